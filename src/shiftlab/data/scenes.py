"""Segmentation scenes from real images, offline: a few objects of a labelled dataset (MNIST-5k
digits, Fashion-MNIST items) placed apart on a zero canvas, each pixel labelled with the class of
the object whose ink covers it (``docs/segmentation.md``).

An object is its image's *ink box*, the smallest box holding its pixels ``> 0``, pasted at a
seeded random position so that no two boxes touch (a gap of at least ``gap`` pixels) and every box
lies inside the canvas. The mask is ``k + 1`` where the pasted pixel of an object of class ``k``
is ``> threshold`` and 0 (background) elsewhere, faint anti-aliased edges included. Scenes come
from one split of the source (build the training scenes from its training split and the test
scenes from its test split, :func:`load_scenes`), so no test object is seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab.data.dataset import ImageDataset
from shiftlab.data.registry import load

__all__ = ["INK_THRESHOLD", "SceneSet", "ink_box", "load_scenes", "make_scenes"]

#: A pasted pixel belongs to its object in the mask when its value (in ``[0, 1]``) is above this;
#: about 15% of the non-zero pixels of MNIST-5k and Fashion-MNIST are at or below it.
INK_THRESHOLD = 0.2
#: Tries to place one object before the scene is drawn again from new objects.
_PLACEMENT_TRIES = 64


@dataclass(frozen=True)
class SceneSet:
    """Segmentation scenes: images, per-pixel labels, and where each object went.

    Attributes:
        images: float32 in ``[0, 1]``, zero where no object is.
        masks: int64, 0 for the background and ``k + 1`` for an object of source class ``k``.
        boxes: int64 ``(top, left, height, width)`` of each object's ink box on the canvas;
            rows of -1 pad scenes with fewer than the most objects.
        sources: int64 index of each object in the source dataset (-1 for padding rows).
        classes: ``["background", *source classes]``; ``classes[m]`` names mask value ``m``.
        threshold: the ink threshold the masks were made with.
        name: e.g. ``"mnist-5k scenes (train)"``.

    Shape:
        - images: :math:`(N, C, H, W)`
        - masks: :math:`(N, H, W)`
        - boxes: :math:`(N, K, 4)`; sources: :math:`(N, K)` with ``K`` the most objects in a scene
    """

    images: Tensor
    masks: Tensor
    boxes: Tensor
    sources: Tensor
    classes: list[str]
    threshold: float
    name: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


def ink_box(image: Tensor) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the smallest box holding the pixels ``> 0`` of ``image``
    ``[C, H, W]`` (any channel); ``ValueError`` for an image without ink.

    Example:
        >>> x = torch.zeros(1, 6, 6); x[0, 1, 2] = 1.0; x[0, 3, 4] = 0.5
        >>> ink_box(x)
        (1, 2, 3, 3)
    """
    on = (image > 0).any(dim=0)
    rows, cols = on.any(dim=1).nonzero()[:, 0], on.any(dim=0).nonzero()[:, 0]
    if not len(rows):
        raise ValueError("the image has no pixel > 0: nothing to place")
    top, left = int(rows[0]), int(cols[0])
    return top, left, int(rows[-1]) - top + 1, int(cols[-1]) - left + 1


def _apart(box: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]], gap: int) -> bool:
    top, left, h, w = box
    return all(top + h + gap <= t or t + bh + gap <= top or left + w + gap <= lf or lf + bw + gap <= left
               for t, lf, bh, bw in placed)


def make_scenes(dataset: ImageDataset, n_scenes: int, *, canvas_size: int = 64, objects: tuple[int, int] = (2, 3),
                threshold: float = INK_THRESHOLD, gap: int = 1, margin: int = 0, seed: int = 0) -> SceneSet:
    """``n_scenes`` scenes of ``objects[0]`` to ``objects[1]`` objects (uniformly many) drawn from
    ``dataset`` (with replacement), each at a random position on a ``canvas_size`` square zero
    canvas, boxes at least ``gap`` pixels apart and ``margin`` pixels from the border. Deterministic for a ``seed``.

    Args:
        dataset: the source split (images ``[N, C, h, w]`` in ``[0, 1]``).
        n_scenes: how many scenes (>= 1).
        canvas_size: the canvas side (at least the source image's larger side).
        objects: the fewest and most objects in a scene (1 <= fewest <= most).
        threshold: the ink threshold of the masks (:data:`INK_THRESHOLD`), in ``[0, 1)``.
        gap: the least distance between two objects' boxes, in pixels (>= 0).
        margin: the least distance of every box from the canvas border (>= 0): a scene moved by
            up to ``margin`` pixels (zero-filled) keeps every object whole.
        seed: the random stream of the draws and positions.

    Raises:
        ValueError: impossible arguments, or scenes that cannot be placed (too many objects for
            the canvas: the message says how many tries failed).

    Example:
        >>> digits = load("digits", limit=50)
        >>> scenes = make_scenes(digits, 4, canvas_size=24, objects=(2, 2), seed=0)
        >>> scenes.images.shape, scenes.masks.shape, scenes.classes[:3]
        (torch.Size([4, 1, 24, 24]), torch.Size([4, 24, 24]), ['background', '0', '1'])
    """
    fewest, most = objects
    c, h, w = dataset.images.shape[1:]
    if not isinstance(n_scenes, int) or n_scenes < 1:
        raise ValueError(f"n_scenes must be a positive int, got {n_scenes!r}")
    if not 1 <= fewest <= most:
        raise ValueError(f"objects must be (fewest, most) with 1 <= fewest <= most, got {objects!r}")
    if canvas_size < max(h, w):
        raise ValueError(f"canvas_size {canvas_size} is smaller than the source images ({h}x{w})")
    if not 0.0 <= threshold < 1.0 or gap < 0 or margin < 0:
        raise ValueError(f"threshold must be in [0, 1) and gap, margin >= 0, got {threshold!r}, {gap!r}, {margin!r}")
    if canvas_size - 2 * margin < max(h, w):
        raise ValueError(f"a {canvas_size} px canvas with a {margin} px margin has no room for {h}x{w} objects")
    if len(dataset) == 0:
        raise ValueError("the source dataset is empty")
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n_scenes, c, canvas_size, canvas_size)
    masks = torch.zeros(n_scenes, canvas_size, canvas_size, dtype=torch.long)
    boxes = torch.full((n_scenes, most, 4), -1, dtype=torch.long)
    sources = torch.full((n_scenes, most), -1, dtype=torch.long)
    for i in range(n_scenes):
        for _ in range(_PLACEMENT_TRIES):
            count = int(torch.randint(fewest, most + 1, (), generator=generator))
            picked = torch.randint(len(dataset), (count,), generator=generator).tolist()
            ink_boxes = [ink_box(dataset.images[index]) for index in picked]
            placed = _place([(bh, bw) for _, _, bh, bw in ink_boxes], canvas_size, gap, margin, generator)
            if placed is not None:
                break
        else:
            raise ValueError(f"could not place {fewest}-{most} objects {gap} px apart on a {canvas_size}x{canvas_size} "
                             f"canvas in {_PLACEMENT_TRIES} scenes of {_PLACEMENT_TRIES} tries each; use fewer objects, "
                             "a larger canvas or a smaller gap")
        for k, (index, (src_top, src_left, _, _), (top, left, bh, bw)) in enumerate(zip(picked, ink_boxes, placed,
                                                                                                strict=True)):
            crop = dataset.images[index, :, src_top:src_top + bh, src_left:src_left + bw]
            images[i, :, top:top + bh, left:left + bw] = crop
            ink = (crop > threshold).any(dim=0)
            masks[i, top:top + bh, left:left + bw][ink] = int(dataset.labels[index]) + 1
            boxes[i, k] = torch.tensor([top, left, bh, bw])
            sources[i, k] = index
    return SceneSet(images, masks, boxes, sources, ["background", *dataset.classes], threshold,
                    f"{dataset.name} scenes")


def _place(sizes: list[tuple[int, int]], canvas_size: int, gap: int, margin: int,
           generator: torch.Generator) -> list[tuple[int, int, int, int]] | None:
    """Canvas boxes ``(top, left, h, w)`` for boxes of ``sizes`` ``(h, w)``, apart and ``margin``
    inside the border; None if one did not fit in :data:`_PLACEMENT_TRIES` tries."""
    placed: list[tuple[int, int, int, int]] = []
    for bh, bw in sizes:
        for _ in range(_PLACEMENT_TRIES):
            top = margin + int(torch.randint(canvas_size - 2 * margin - bh + 1, (), generator=generator))
            left = margin + int(torch.randint(canvas_size - 2 * margin - bw + 1, (), generator=generator))
            if _apart((top, left, bh, bw), placed, gap):
                placed.append((top, left, bh, bw))
                break
        else:
            return None
    return placed


def load_scenes(name: str, split: str, n_scenes: int, *, canvas_size: int = 64, objects: tuple[int, int] = (2, 3),
                threshold: float = INK_THRESHOLD, gap: int = 1, margin: int = 0, seed: int | None = None) -> SceneSet:
    """Scenes from the ``split`` (``"train"`` or ``"test"``) of the registered dataset ``name``
    (:func:`shiftlab.data.load`), made by :func:`make_scenes` with the other arguments; ``seed``
    defaults to 0 for training scenes and 1 for test scenes.

    Example:
        >>> load_scenes("digits", "test", 2, canvas_size=24).name
        'digits scenes (test)'
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if seed is None:
        seed = 0 if split == "train" else 1
    scenes = make_scenes(load(name, split=split), n_scenes, canvas_size=canvas_size, objects=objects,
                         threshold=threshold, gap=gap, margin=margin, seed=seed)
    return SceneSet(scenes.images, scenes.masks, scenes.boxes, scenes.sources, scenes.classes, scenes.threshold,
                    f"{scenes.name} ({split})")
