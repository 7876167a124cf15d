"""The image dataset container shared by every loader, and the helpers loaders share.

Every loader in :mod:`shiftlab.data` returns an :class:`ImageDataset`: float32 images in
``[0, 1]`` with int64 labels, whatever the file format on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

Split = Literal["train", "test", "all"]
SPLITS: tuple[str, ...] = ("train", "test", "all")

#: Fraction and seed of the fixed split used for sources that ship without an official one.
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled set of same-sized images held in memory.

    Args:
        images: float32 pixel values in ``[0, 1]``.
        labels: int64 class indices into ``classes``.
        classes: class names; ``classes[k]`` names label ``k``.
        name: dataset name, e.g. ``"mnist-5k"`` (the registry name where there is one).
        source: where the data came from (a path or a package resource), for provenance.

    Shape:
        - images: :math:`(N, C, H, W)`
        - labels: :math:`(N,)`

    Example:
        >>> ds = ImageDataset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 0, 1]), ["a", "b"], "toy", "memory")
        >>> train, test = ds.split(0.5, seed=0)
        >>> len(train), len(test)
        (2, 2)
    """

    images: Tensor
    labels: Tensor
    classes: list[str]
    name: str
    source: str = field(default="")

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(self.images.shape)}")
        if self.images.dtype != torch.float32:
            raise TypeError(f"images must be float32, got {self.images.dtype}")
        if self.labels.ndim != 1 or self.labels.dtype != torch.int64:
            raise TypeError(f"labels must be a 1-D int64 tensor, got {self.labels.dtype} {tuple(self.labels.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")
        if self.labels.numel() and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must lie in [0, {len(self.classes)}) for {len(self.classes)} classes, "
                f"got range [{int(self.labels.min())}, {int(self.labels.max())}]"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"classes={len(self.classes)}, source={self.source!r})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: Tensor | Sequence[int] | np.ndarray) -> ImageDataset:
        """The samples at ``indices`` (integer positions, in the given order)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(self.images[index], self.labels[index], list(self.classes), self.name, self.source)

    def split(self, test_fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """A seeded, stratified ``(train, test)`` split.

        Each class contributes ``round(test_fraction * n_class)`` samples, drawn at random with
        ``seed``, to the test part; both parts keep the original sample order.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        generator = torch.Generator().manual_seed(seed)
        is_test = torch.zeros(len(self), dtype=torch.bool)
        for label in torch.unique(self.labels):
            members = torch.nonzero(self.labels == label).squeeze(1)
            chosen = members[torch.randperm(members.numel(), generator=generator)]
            is_test[chosen[: round(test_fraction * members.numel())]] = True
        return self.subset(torch.nonzero(~is_test).squeeze(1)), self.subset(torch.nonzero(is_test).squeeze(1))

    def head(self, n: int) -> ImageDataset:
        """The first ``n`` samples in class-interleaved order, so a small ``n`` still covers every class.

        Samples are ranked by their position within their own class (first of each class, then
        second of each class, ...); the ``n`` best-ranked are returned in their original order.
        Deterministic; ``n >= len(self)`` returns everything.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self.subset(np.sort(class_interleaved(self.labels)[:n]))


def class_interleaved(labels: Tensor | np.ndarray) -> np.ndarray:
    """Every index of ``labels`` in class-interleaved order: the first sample of each class
    (classes in order), then the second of each, and so on (a set sorted by class would otherwise
    start with one class only).

    Shape: labels ``(N,)`` -> ``(N,)`` int64 indices.

    Example:
        >>> class_interleaved(np.array([0, 0, 0, 1, 1, 2])).tolist()
        [0, 3, 5, 1, 4, 2]
    """
    values = labels.cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    by_class = np.argsort(values, kind="stable")
    rank = np.empty(len(values), dtype=np.int64)
    rank[by_class] = np.arange(len(values)) - np.searchsorted(values[by_class], values[by_class])
    return np.lexsort((values, rank))


def to_unit_float(pixels: np.ndarray, max_value: float) -> Tensor:
    """Integer pixel values in ``[0, max_value]`` as a float32 tensor in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(max_value))


def index_labels(labels: np.ndarray) -> Tensor:
    """Integer class labels of any numpy integer dtype as a 1-D int64 tensor."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    return torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64).reshape(-1))


def check_split(split: str | None, default: str) -> str:
    """``split`` validated against :data:`SPLITS`, or ``default`` for ``None``."""
    split = default if split is None else split
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def select_split(dataset: ImageDataset, split: str | None) -> ImageDataset:
    """Apply ``split`` to a source that has no official train/test split.

    ``None`` and ``"all"`` return everything; ``"train"`` and ``"test"`` return the two parts of
    the fixed stratified split ``dataset.split(DEFAULT_TEST_FRACTION, DEFAULT_SPLIT_SEED)``.
    """
    split = check_split(split, default="all")
    if split == "all":
        return dataset
    train, test = dataset.split(DEFAULT_TEST_FRACTION, DEFAULT_SPLIT_SEED)
    return train if split == "train" else test


def missing_data(what: str, where: str, how: str) -> FileNotFoundError:
    """A :class:`FileNotFoundError` that says what is missing, where it was looked for, and how to get it."""
    return FileNotFoundError(f"{what} not found ({where}). {how} shiftlab never downloads data.")
