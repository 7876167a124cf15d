"""Translated variants of small images: objects placed on a larger zero canvas.

This realises the **zeros** shift (``docs/definitions.md``, "Shifts") without losing content: an ``h x w``
object is pasted into an ``H x W`` canvas of zeros, at the centred position
``(top, left) = ((H - h) // 2, (W - w) // 2)`` plus an integer offset ``(dy, dx)`` (positive
``dy`` moves the object down, positive ``dx`` right). Offsets must keep the whole object inside:
``-top <= dy <= H - h - top`` (and likewise for ``dx``). The symmetric range
``[-m, m]`` with ``m = (H - h) // 2`` is the :func:`max_shift`; when ``H - h`` is odd one more
shift exists in the positive direction only.

Everything is vectorised: one gather per batch, no Python loop over images.

Example:
    >>> canvas = Canvas.for_object(28, fraction=0.25, multiple_of=8)
    >>> canvas.canvas_size, canvas.max_shift
    ((48, 48), (10, 10))
    >>> objects = torch.rand(5, 1, 28, 28)
    >>> placed, offsets = canvas.random(objects, seed=0)
    >>> placed.shape
    torch.Size([5, 1, 48, 48])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from shiftlab.measure.shiftsets import offset_grid

Size = int | Sequence[int]


def _pair(value: Size, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (H, W), got {value!r}")
    return pair[0], pair[1]


@overload
def canvas_size_for(object_size: int, fraction: float = ..., multiple_of: int = ...) -> int: ...
@overload
def canvas_size_for(object_size: Sequence[int], fraction: float = ..., multiple_of: int = ...) -> tuple[int, int]: ...
def canvas_size_for(object_size: Size, fraction: float = 0.25, multiple_of: int = 1) -> int | tuple[int, int]:
    """The smallest canvas on which the object can move ``fraction * object_size`` pixels each way.

    Per dimension: ``shift = ceil(fraction * size)``, ``canvas = size + 2 * shift``, then rounded
    up to a multiple of ``multiple_of`` (e.g. a network's total stride, so that the canvas is
    divisible by it). Rounding up only adds room, so the shifts of ``fraction * size`` in both
    directions always fit; :func:`max_shift` gives the exact symmetric range of the result.

    Returns:
        An int for an int ``object_size``, else ``(H, W)``.

    Example:
        >>> canvas_size_for(28, 0.25), canvas_size_for(28, 0.25, multiple_of=8), canvas_size_for((8, 6), 0.5)
        (42, 48, (16, 12))
    """
    if fraction < 0:
        raise ValueError(f"fraction must be >= 0, got {fraction}")
    if multiple_of < 1:
        raise ValueError(f"multiple_of must be >= 1, got {multiple_of}")

    def one(size: int) -> int:
        shift = math.ceil(fraction * size - 1e-9)
        return math.ceil((size + 2 * shift) / multiple_of) * multiple_of

    if isinstance(object_size, int):
        return one(object_size)
    height, width = _pair(object_size, "object_size")
    return one(height), one(width)


def centre_position(object_size: Size, canvas_size: Size) -> tuple[int, int]:
    """``(top, left)`` of the centred object: ``((H - h) // 2, (W - w) // 2)``."""
    (h, w), (H, W) = _pair(object_size, "object_size"), _pair(canvas_size, "canvas_size")
    if h > H or w > W:
        raise ValueError(f"a {h}x{w} object does not fit on a {H}x{W} canvas")
    return (H - h) // 2, (W - w) // 2


def max_shift(object_size: Size, canvas_size: Size) -> tuple[int, int]:
    """The largest ``(my, mx)`` such that every offset in ``[-my, my] x [-mx, mx]`` keeps the object inside."""
    return centre_position(object_size, canvas_size)


def _check_offsets(offsets: Tensor | Sequence[Sequence[int]], n: int) -> Tensor:
    offsets = torch.as_tensor(offsets)
    if offsets.is_floating_point() or offsets.is_complex() or offsets.dtype == torch.bool:
        raise TypeError(f"offsets must be integers, got {offsets.dtype}")
    if offsets.shape != (n, 2):
        raise ValueError(f"offsets must have shape ({n}, 2) as (dy, dx) per image, got {tuple(offsets.shape)}")
    return offsets.to(torch.int64)


def translate(images: Tensor, offsets: Tensor | Sequence[Sequence[int]]) -> Tensor:
    """Move each image by its own integer offset, filling vacated pixels with zeros.

    ``out[n, :, i, j] = images[n, :, i - dy_n, j - dx_n]`` where that pixel exists, else 0 (the
    **zeros** shift of ``docs/definitions.md``, per sample). Content moved past the border is lost.

    Shape:
        - images: :math:`(N, C, H, W)`
        - offsets: :math:`(N, 2)` integer ``(dy, dx)``
        - output: :math:`(N, C, H, W)`
    """
    n, c, h, w = images.shape
    offsets = _check_offsets(offsets, n).to(images.device)
    rows = torch.arange(h, device=images.device) - offsets[:, :1]  # [N, H]
    cols = torch.arange(w, device=images.device) - offsets[:, 1:]  # [N, W]
    inside = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
    gathered = images[
        torch.arange(n, device=images.device)[:, None, None, None],
        torch.arange(c, device=images.device)[None, :, None, None],
        rows.clamp(0, h - 1)[:, None, :, None],
        cols.clamp(0, w - 1)[:, None, None, :],
    ]
    return torch.where(inside, gathered, torch.zeros((), dtype=images.dtype, device=images.device))


def _check_inside(offsets: Tensor, object_size: tuple[int, int], canvas_size: tuple[int, int]) -> None:
    (h, w), (H, W) = object_size, canvas_size
    top, left = centre_position(object_size, canvas_size)
    low = torch.tensor([-top, -left])
    high = torch.tensor([H - h - top, W - w - left])
    outside = ((offsets.cpu() < low) | (offsets.cpu() > high)).any(dim=1)
    if outside.any():
        k = int(torch.nonzero(outside)[0])
        dy, dx = offsets[k].tolist()
        raise ValueError(
            f"offset (dy, dx) = ({dy}, {dx}) of image {k} puts the {h}x{w} object (partly) outside the "
            f"{H}x{W} canvas; allowed dy in [{-top}, {H - h - top}], dx in [{-left}, {W - w - left}]"
        )


def place_on_canvas(
    images: Tensor, canvas_size: Size, offsets: Tensor | Sequence[Sequence[int]] | None = None
) -> Tensor:
    """Paste each object onto a zero canvas, centred and then moved by its offset.

    Args:
        images: the objects.
        canvas_size: ``H`` or ``(H, W)``, at least the object size.
        offsets: ``(dy, dx)`` per image relative to the centred position; ``None`` centres all.

    Shape:
        - images: :math:`(N, C, h, w)`
        - offsets: :math:`(N, 2)` integer
        - output: :math:`(N, C, H, W)`

    Raises:
        ValueError: if an offset would put an object (partly) outside the canvas; the message names
            the first such image and the allowed range.
    """
    n, _, h, w = images.shape
    canvas = _pair(canvas_size, "canvas_size")
    top, left = centre_position((h, w), canvas)
    centred = F.pad(images, (left, canvas[1] - w - left, top, canvas[0] - h - top))
    if offsets is None:
        return centred
    offsets = _check_offsets(offsets, n)
    _check_inside(offsets, (h, w), canvas)
    return translate(centred, offsets)


def random_offsets(n: int, max_shift: Size, *, generator: torch.Generator | None = None) -> Tensor:
    """``n`` offsets drawn uniformly from ``[-my, my] x [-mx, mx]`` with ``generator``: for
    ``my == mx`` one ``torch.randint`` of ``n x 2`` values (the draws of training's
    ``augment="translate"``, which uses :func:`random_translate`).

    Shape:
        - output: :math:`(n, 2)` int64 ``(dy, dx)``
    """
    my, mx = _pair(max_shift, "max_shift")
    if my < 0 or mx < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift!r}")
    if my == mx:  # one draw of n x 2 values: training's augmentation draws exactly these
        return torch.randint(-my, my + 1, (n, 2), generator=generator)
    dy = torch.randint(-my, my + 1, (n,), generator=generator)
    dx = torch.randint(-mx, mx + 1, (n,), generator=generator)
    return torch.stack([dy, dx], dim=1)


def grid_offsets(max_shift: Size, step: int = 1) -> Tensor:
    """Every offset ``(k * step, l * step)`` inside ``[-my, my] x [-mx, mx]``, each exactly once.

    Always contains ``(0, 0)``; ordered row-major (``dy`` outer, ``dx`` inner).

    Shape:
        - output: :math:`(P, 2)` int64 with :math:`P = (2 \\lfloor my/step \\rfloor + 1)(2 \\lfloor mx/step \\rfloor + 1)`
    """
    return offset_grid(*_pair(max_shift, "max_shift"), step)


def place_grid(images: Tensor, canvas_size: Size, offsets: Tensor) -> Tensor:
    """Every object at every offset: ``out[n, p] = place_on_canvas(images[n], offsets[p])``.

    Memory grows as ``N * P``; use :func:`iter_grid` for bounded batches.

    Shape:
        - images: :math:`(N, C, h, w)`
        - offsets: :math:`(P, 2)` integer
        - output: :math:`(N, P, C, H, W)`
    """
    n, p = images.shape[0], len(offsets)
    placed = place_on_canvas(images.repeat_interleave(p, dim=0), canvas_size, torch.as_tensor(offsets).repeat(n, 1))
    return placed.reshape(n, p, *placed.shape[1:])


class GridBatch(NamedTuple):
    """One batch of (image, offset) pairs from :func:`iter_grid`.

    Shape:
        - image_index: :math:`(B,)` int64, index into the objects
        - offset_index: :math:`(B,)` int64, index into the offsets
        - images: :math:`(B, C, H, W)`, ``images[b]`` = object ``image_index[b]`` at offset ``offset_index[b]``
    """

    image_index: Tensor
    offset_index: Tensor
    images: Tensor


def iter_grid(images: Tensor, canvas_size: Size, offsets: Tensor, batch_size: int = 256) -> Iterator[GridBatch]:
    """Every object at every offset, in batches of at most ``batch_size`` canvases.

    Pairs come image-major (all offsets of image 0, then of image 1, ...), so the batches of
    :func:`place_grid` flattened, without holding more than one batch. Offsets are checked
    against the canvas before the first batch.

    Shape:
        - images: :math:`(N, C, h, w)`
        - offsets: :math:`(P, 2)` integer
        - yields: :class:`GridBatch` with :math:`B \\le` ``batch_size``; :math:`N P` pairs in all
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    offsets = _check_offsets(offsets, len(offsets))
    _check_inside(offsets, (images.shape[2], images.shape[3]), _pair(canvas_size, "canvas_size"))
    return _grid_batches(images, canvas_size, offsets, batch_size)


def _grid_batches(images: Tensor, canvas_size: Size, offsets: Tensor, batch_size: int) -> Iterator[GridBatch]:
    p = len(offsets)
    total = images.shape[0] * p
    for start in range(0, total, batch_size):
        pair = torch.arange(start, min(start + batch_size, total))
        image_index, offset_index = pair // p, pair % p
        yield GridBatch(image_index, offset_index, place_on_canvas(images[image_index], canvas_size, offsets[offset_index]))


def random_translate(images: Tensor, max_shift: Size, generator: torch.Generator | None = None) -> Tensor:
    """Data augmentation: move each image by its own random offset in ``[-m, m]^2``, zero-filled.

    Offsets come from :func:`random_offsets` with ``generator`` (CPU), so the result is
    deterministic for a given generator state. Objects on a canvas whose margins are at least
    ``max_shift`` keep all their pixels (the pixel sum is unchanged); otherwise content moved
    past the border is lost.

    Shape:
        - images: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """
    return translate(images, random_offsets(images.shape[0], max_shift, generator=generator))


def content_extent(images: Tensor, threshold: float = 0.0) -> tuple[int, int]:
    """The largest height and width, over the images, of each image's own content box.

    An image's content box is the smallest box holding its pixels ``> threshold`` (any channel).

    Shape:
        - images: :math:`(N, C, H, W)`

    Example:
        >>> x = torch.zeros(2, 1, 6, 6); x[0, 0, 1, 2] = 1; x[1, 0, 3, 1:4] = 1
        >>> content_extent(x)
        (1, 3)
    """
    on = (images > threshold).any(dim=1)  # [N, H, W]

    def extent(mask: Tensor) -> int:  # mask [N, L]: any content along one axis
        idx = torch.arange(mask.shape[1])
        first = torch.where(mask, idx, mask.shape[1]).min(dim=1).values
        last = torch.where(mask, idx, -1).max(dim=1).values
        return int((last - first + 1).clamp_min(0).max()) if mask.numel() else 0

    return extent(on.any(dim=2)), extent(on.any(dim=1))


@dataclass(frozen=True, init=False)
class Canvas:
    """An ``object_size`` object on a ``canvas_size`` canvas, with the three placements of the study.

    - :meth:`centred`: every object in the middle;
    - :meth:`random`: each object at a seeded random offset;
    - :meth:`grid` / :meth:`iter_grid`: every object at every offset of :meth:`grid_offsets`.

    Args:
        object_size: ``h`` or ``(h, w)``.
        canvas_size: ``H`` or ``(H, W)``, at least the object size.
    """

    object_size: tuple[int, int]
    canvas_size: tuple[int, int]

    def __init__(self, object_size: Size, canvas_size: Size) -> None:
        object.__setattr__(self, "object_size", _pair(object_size, "object_size"))
        object.__setattr__(self, "canvas_size", _pair(canvas_size, "canvas_size"))
        centre_position(self.object_size, self.canvas_size)

    @classmethod
    def for_object(cls, object_size: Size, fraction: float = 0.25, multiple_of: int = 1) -> Canvas:
        """The canvas of :func:`canvas_size_for` for this object size."""
        pair = _pair(object_size, "object_size")
        return cls(pair, canvas_size_for(pair, fraction, multiple_of))

    @classmethod
    def for_content(cls, images: Tensor, fraction: float = 0.25, multiple_of: int = 1, min_margin: int = 0) -> Canvas:
        """A canvas for ``images`` on which their *content* can move ``fraction`` of its extent.

        The margin around each image on each side is ``max(ceil(fraction * extent), min_margin)``, where ``extent`` is
        :func:`content_extent` (e.g. MNIST digits fill a 20x20 box of their 28x28 frame, so
        ``fraction=0.25`` gives margins of 5 and, with ``multiple_of=8``, a 40x40 canvas).
        """
        h, w = images.shape[-2:]
        eh, ew = content_extent(images)
        size = tuple(
            -(-(n + 2 * max(math.ceil(fraction * e), min_margin)) // multiple_of) * multiple_of for n, e in ((h, eh), (w, ew))
        )
        return cls((h, w), size)

    @property
    def max_shift(self) -> tuple[int, int]:
        """See :func:`max_shift`."""
        return max_shift(self.object_size, self.canvas_size)

    def _check(self, images: Tensor) -> None:
        if images.ndim != 4 or tuple(images.shape[2:]) != self.object_size:
            raise ValueError(f"expected objects [N, C, {self.object_size[0]}, {self.object_size[1]}], got {tuple(images.shape)}")

    def place(self, images: Tensor, offsets: Tensor | None = None) -> Tensor:
        """:func:`place_on_canvas` on this canvas. Shape: :math:`(N, C, h, w) \\to (N, C, H, W)`."""
        self._check(images)
        return place_on_canvas(images, self.canvas_size, offsets)

    def centred(self, images: Tensor) -> Tensor:
        """Every object in the middle. Shape: :math:`(N, C, h, w) \\to (N, C, H, W)`."""
        return self.place(images)

    def random(self, images: Tensor, seed: int, max_shift: Size | None = None) -> tuple[Tensor, Tensor]:
        """Each object at a uniform random offset in ``[-m, m]^2`` (default ``m`` = :attr:`max_shift`).

        Reproducible: the same ``seed`` gives the same offsets.

        Shape:
            - images: :math:`(N, C, h, w)`
            - output: ``(canvases, offsets)`` of shapes :math:`(N, C, H, W)` and :math:`(N, 2)`
        """
        generator = torch.Generator().manual_seed(seed)
        offsets = random_offsets(images.shape[0], self.max_shift if max_shift is None else max_shift, generator=generator)
        return self.place(images, offsets), offsets

    def grid_offsets(self, step: int = 1, max_shift: Size | None = None) -> Tensor:
        """:func:`grid_offsets` up to :attr:`max_shift` (or a smaller ``max_shift``). Shape: :math:`(P, 2)`."""
        return grid_offsets(self.max_shift if max_shift is None else max_shift, step)

    def grid(self, images: Tensor, step: int = 1, max_shift: Size | None = None) -> tuple[Tensor, Tensor]:
        """Every object at every grid offset.

        Shape:
            - images: :math:`(N, C, h, w)`
            - output: ``(canvases, offsets)`` of shapes :math:`(N, P, C, H, W)` and :math:`(P, 2)`
        """
        self._check(images)
        offsets = self.grid_offsets(step, max_shift)
        return place_grid(images, self.canvas_size, offsets), offsets

    def iter_grid(
        self, images: Tensor, step: int = 1, max_shift: Size | None = None, batch_size: int = 256
    ) -> Iterator[GridBatch]:
        """:func:`iter_grid` over :meth:`grid_offsets`; ``offset_index`` indexes ``self.grid_offsets(step, max_shift)``."""
        self._check(images)
        return iter_grid(images, self.canvas_size, self.grid_offsets(step, max_shift), batch_size)
