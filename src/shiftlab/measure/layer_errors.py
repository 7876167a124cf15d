"""The comparison of one layer in one forward pass (``docs/definitions.md``, "Equivariance
metrics"), per shift: the squared error ``sum_{n, c} (f_l(T_d x) - T_{d'} f_l(x))^2`` and the
squared target ``sum_{n, c} (T_{d'} f_l(x))^2``, per pixel of the layer's map.

The targets ``T_{d'} f_l(x)`` are never built one per shift:

- A shift at layer resolution is a whole-pixel *step* applied to a *source* map
  (:func:`plan_shifts`). Aligned shifts (``d'`` whole) step the reference map itself. In circular
  mode a band-limited shift factors exactly as ``T_{d'} = T_i S_f`` with ``i = floor(d')`` and
  ``f = d' - i``, so the unaligned shifts that share a fractional part share one source
  ``S_f f_l(x)``. In zeros mode the band-limited shift of the map padded by ``ceil(|d'|)`` is
  its own source (the padding depends on ``d'``), stepped along the whole axes of ``d'`` only.
- A step is never materialised: the difference is taken between slices of the shifted map and
  the source (four slice pairs for a circular step, one for a zero-filled step, whose vacated
  band compares the shifted map with 0), into one buffer reused for every shift.
- A source is computed with the matrices of the band-limited shift of each axis
  (:func:`axis_matrix`; ``[H_l, H_l]`` and ``[W_l, W_l]``, built from
  :func:`~shiftlab.measure.shifts.shift_many` itself), and the one frequency where the 2-D shift
  is not the product of the two (both Nyquist frequencies, present when both sizes are even) is
  corrected by a rank-one term: the same numbers as the 2-D FFT of
  :func:`~shiftlab.measure.shifts.shift_many`, to float rounding.
- The squared targets per pixel are steps of one ``[H_l, W_l]`` map per source.

Shape conventions: the reference ``[n, C, H_l, W_l]``, the shifted maps ``[s, n, C, H_l, W_l]``
(any memory format; channels-last maps are multiplied in their own layout).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab._layout import is_channels_last
from shiftlab.measure.shifts import shift_many

__all__ = ["DENSE_PIXELS", "LayerComparison", "ShiftPlan", "Source", "axis_matrix", "flat", "plan_shifts"]

#: A pair ``(rows, columns)`` of slices of a map's last two axes.
Region = tuple[slice, slice]

#: Maps of at most this many pixels are compared through dense ``[H W, H W]`` operators, every
#: target of a pass in one product (at 8x8 one such product takes half the time of the separable
#: shift of a single source, and a pass then needs a dozen operations instead of a dozen per shift;
#: at 12x12 the separable shift is faster).
DENSE_PIXELS = 64
#: ... while the operators of the whole shift set, ``S (H W)^2`` float64 numbers, stay under this
#: many (2 MiB; 64 shifts of an 8x8 map): a larger shift set compares by slices.
DENSE_BUDGET = 1 << 18


@dataclass(frozen=True)
class Source:
    """The map a group of shifts steps: the reference shifted band-limited by ``y`` rows and
    ``x`` columns (0: not along that axis), circularly, or (``padded``) as zeros mode defines a
    fractional shift (the map padded by ``ceil(|d|)`` zeros, shifted, cropped back)."""

    y: float
    x: float
    padded: bool

    def corner(self, hw: tuple[int, int]) -> float:
        """The coefficient of the rank-one correction of the separable shift: the 2-D shift
        scales the (Nyquist, Nyquist) component of a map by ``cos(pi (y + x))``, the product of
        the axes' shifts by ``cos(pi y) cos(pi x)``; the difference, divided by the number of
        pixels of the (padded) map the FFT runs on. 0 unless both sizes are even and both
        shifts fractional."""
        h, w = hw
        if h % 2 or w % 2 or self.y == 0 or self.x == 0:
            return 0.0
        if self.padded:
            h, w = h + 2 * math.ceil(abs(self.y)), w + 2 * math.ceil(abs(self.x))
        return -math.sin(math.pi * self.y) * math.sin(math.pi * self.x) / (h * w)


@dataclass(frozen=True)
class ShiftPlan:
    """How one shift's target is made: ``step`` (whole pixels, ``(dy, dx)``) of ``source`` (None:
    the reference map itself)."""

    source: Source | None
    step: tuple[int, int]


def plan_shifts(offsets: Tensor, mode: str) -> list[ShiftPlan]:
    """The plan of each shift ``[S, 2]`` at layer resolution, in ``mode`` (``"circular"`` and
    ``"fourier"`` step circularly, ``"zeros"`` and ``"crop"`` fill with zeros).

    Example:
        >>> [p.step for p in plan_shifts(torch.tensor([[2.0, -0.5], [0.5, 1.5]]), "circular")]
        [(2, -1), (0, 1)]
        >>> plan_shifts(torch.tensor([[2.0, -0.5]]), "zeros")[0]
        ShiftPlan(source=Source(y=0.0, x=-0.5, padded=True), step=(2, 0))
    """
    plans = []
    for dy, dx in offsets.tolist():
        whole_y, whole_x = dy == math.floor(dy), dx == math.floor(dx)
        if whole_y and whole_x:
            plans.append(ShiftPlan(None, (int(dy), int(dx))))
        elif mode in ("zeros", "crop"):
            plans.append(ShiftPlan(Source(0.0 if whole_y else dy, 0.0 if whole_x else dx, True),
                                   (int(dy) if whole_y else 0, int(dx) if whole_x else 0)))
        else:
            iy, ix = math.floor(dy), math.floor(dx)
            plans.append(ShiftPlan(Source(dy - iy, dx - ix, False), (iy, ix)))
    return plans


@functools.lru_cache(maxsize=512)
def _axis_matrix64(size: int, d: float, padded: bool) -> Tensor:
    eye = torch.eye(size, dtype=torch.float64).reshape(size, 1, size)  # row j: the unit impulse at j
    moved = shift_many(eye, [(0.0, d)], "zeros" if padded else "circular")[0, :, 0, :]
    return moved.T.contiguous()  # column j: the shifted impulse


def axis_matrix(size: int, d: float, padded: bool, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``[size, size]``: the band-limited shift by ``d`` along one axis of ``size`` pixels as a
    matrix (``M @ v`` shifts the column ``v``), circular, or (``padded``) the zeros mode's
    padded shift; built in float64 by :func:`~shiftlab.measure.shifts.shift_many` of the
    impulses, then cast.

    Example:
        >>> m = axis_matrix(4, 1.0, False, torch.float64, torch.device("cpu"))
        >>> torch.allclose(m @ torch.arange(4.0, dtype=torch.float64), torch.tensor([3.0, 0, 1, 2], dtype=torch.float64))
        True
    """
    return _axis_matrix64(size, float(d), padded).to(device=device, dtype=dtype)


def _dense_operators(offsets: Tensor, hw: tuple[int, int], mode: str) -> Tensor:
    """``[S, H W, H W]`` float64: each shift's target as a matrix on the flattened map (row ``i``:
    the weights of target pixel ``i``), :func:`~shiftlab.measure.shifts.shift_many` of the unit
    impulses in ``mode`` (zeros for ``"crop"``)."""
    h, w = hw
    impulses = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    fill = "zeros" if mode == "crop" else mode
    moved = [shift_many(impulses, d[None], fill)[0].reshape(h * w, h * w).T for d in offsets]
    return torch.stack(moved) if moved else impulses.new_empty((0, h * w, h * w))


def _along(x: Tensor, m: Tensor, dim: int) -> Tensor:
    """``m [L, L]`` applied along axis ``dim`` (2: rows, 3: columns) of ``x [n, C, H, W]``, as
    batched matrix products in the memory layout of ``x`` (channels-last kept)."""
    n, c, h, w = x.shape
    if is_channels_last(x):
        p = x.permute(0, 2, 3, 1)
        out = torch.matmul(m, p.reshape(n, h, w * c) if dim == 2 else p.reshape(n * h, w, c))
        return out.view(n, h, w, c).permute(0, 3, 1, 2)
    x = x.contiguous()
    if dim == 2:
        return torch.matmul(m, x.view(n * c, h, w)).view(n, c, h, w)
    return torch.matmul(x.view(n * c * h, w), m.T).view(n, c, h, w)


@functools.lru_cache(maxsize=64)
def _checker64(hw: tuple[int, int]) -> Tensor:
    i = torch.arange(hw[0])[:, None] + torch.arange(hw[1])[None, :]
    return (1 - 2 * (i % 2)).double()


def _checker(hw: tuple[int, int], like: Tensor) -> Tensor:
    """``[H, W]``: ``(-1)^(i + j)``, the (Nyquist, Nyquist) frequency's pattern, in the dtype and
    on the device of ``like``."""
    return _checker64(hw).to(device=like.device, dtype=like.dtype)


def _source_map(ref: Tensor, source: Source, corner_dot: Tensor | None) -> Tensor:
    """``S ref``: the band-limited shift of ``source`` applied to ``ref [n, C, H, W]``, axis by
    axis, plus the corner correction (``corner_dot [n, C]``: each map's component at the
    (Nyquist, Nyquist) frequency, times ``H W``; needed when :meth:`Source.corner` is not 0)."""
    h, w = ref.shape[-2:]
    out = ref
    if source.y:
        out = _along(out, axis_matrix(h, source.y, source.padded, ref.dtype, ref.device), 2)
    if source.x:
        out = _along(out, axis_matrix(w, source.x, source.padded, ref.dtype, ref.device), 3)
    coef = source.corner((h, w))
    if coef:
        assert corner_dot is not None
        out.addcmul_(corner_dot[:, :, None, None], _checker((h, w), ref), value=coef)
    return out


def _corner_dot(ref: Tensor) -> Tensor:
    """``[n, C]``: ``sum_{i, j} ref[n, c, i, j] (-1)^(i + j)``."""
    n, c, h, w = ref.shape
    checker = _checker((h, w), ref).reshape(h * w)
    if is_channels_last(ref):
        return torch.matmul(checker, ref.permute(0, 2, 3, 1).reshape(n, h * w, c))
    return torch.matmul(ref.reshape(n * c, h * w), checker).view(n, c)


@functools.lru_cache(maxsize=4096)
def _regions(hw: tuple[int, int], step: tuple[int, int], circular: bool) -> tuple[tuple[tuple[Region, Region], ...],
                                                                                   tuple[Region, ...]]:
    """How a step of a map splits into slices: ``(pairs, vacated)``, ``pairs`` of ``(target
    region, source region)`` with ``target[target region] = source[source region]``, and the
    target regions a zero-filled step vacates (where the target is 0)."""
    def axis(n: int, d: int) -> tuple[list[tuple[slice, slice]], list[slice]]:
        if circular:
            d %= n
            pairs = [(slice(d, n), slice(0, n - d)), (slice(0, d), slice(n - d, n))]
            return [p for p in pairs if p[0].start != p[0].stop], []
        if abs(d) >= n:
            return [], [slice(0, n)]
        lo, hi = max(d, 0), n + min(d, 0)
        vacated = [s for s in (slice(0, lo), slice(hi, n)) if s.start != s.stop]
        return [(slice(lo, hi), slice(lo - d, hi - d))], vacated

    rows, vac_rows = axis(hw[0], step[0])
    cols, vac_cols = axis(hw[1], step[1])
    pairs = tuple(((ty, tx), (sy, sx)) for ty, sy in rows for tx, sx in cols)
    # the vacated rows span every column; the vacated columns, the rows that are not vacated
    vacated = tuple((r, slice(0, hw[1])) for r in vac_rows) + tuple((ty, c) for ty, _ in rows for c in vac_cols)
    return pairs, vacated


def _difference(shifted: Tensor, source: Tensor, step: tuple[int, int], circular: bool, out: Tensor) -> Tensor:
    """``out = shifted - T_step source`` (all ``[n, C, H, W]``), slice by slice."""
    pairs, vacated = _regions((source.shape[-2], source.shape[-1]), step, circular)
    for (ty, tx), (sy, sx) in pairs:
        torch.sub(shifted[..., ty, tx], source[..., sy, sx], out=out[..., ty, tx])
    for ty, tx in vacated:
        out[..., ty, tx] = shifted[..., ty, tx]
    return out


def _pixel_squares(x: Tensor, buffer: Tensor) -> Tensor:
    """``sum_{n, c} x^2`` per pixel, ``[H, W]`` in the dtype of ``x [n, C, H, W]`` (``buffer``:
    scratch of its shape and layout). A channels-last map is summed in its memory order, over
    the images, then the channels (up to 3x faster than both logical axes at once)."""
    squared = torch.mul(x, x, out=buffer)
    if is_channels_last(squared):
        return squared.permute(0, 2, 3, 1).sum(dim=0).sum(dim=-1)
    return squared.sum(dim=(0, 1))


def flat(x: Tensor) -> Tensor:
    """``x [n, C, H, W]`` as one dimension, a view in memory order when it is contiguous or
    channels-last (a full reduction of a channels-last tensor is several times faster so)."""
    if x.is_contiguous():
        return x.view(-1)
    p = x.permute(0, 2, 3, 1)
    return p.view(-1) if p.is_contiguous() else x.reshape(-1)


def _rectangles(masks: Tensor) -> tuple[Tensor, Tensor, list[tuple[int, int]]]:
    """The rows and columns of masks ``[S, H, W]`` that are each a rectangle (or empty):
    ``(rows [S, H] bool, cols [S, W] bool, [(left, right)] * S)``, the mask the outer product of
    its rows and columns, its columns ``left .. right - 1`` (``left == right`` when empty)."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    if not torch.equal(masks, rows[:, :, None] & cols[:, None, :]):
        raise ValueError("an interior mask must be a rectangle")
    w = masks.shape[2]
    left = torch.where(cols.any(dim=1), cols.int().argmax(dim=1), 0)
    right = torch.where(cols.any(dim=1), w - cols.flip(1).int().argmax(dim=1), 0)
    return rows, cols, list(zip(left.tolist(), right.tolist(), strict=True))


def _rows(x: Tensor) -> tuple[Tensor, int]:
    """``x [n, C, H, W]`` as the rows of its memory, ``[m, k]``, each row one image row (fixed
    ``n``, ``h`` and, unless channels-last, ``c``): ``m`` is a multiple of ``H`` with ``h``
    fastest, and pixel column ``w`` spans row entries ``w * f .. (w + 1) * f - 1``. Returns
    ``(rows, f)``, ``f = C`` for channels-last maps, else 1; a view of ``x`` when it is
    contiguous or channels-last."""
    n, c, h, w = x.shape
    if is_channels_last(x):
        return x.permute(0, 2, 3, 1).reshape(n * h, w * c), c
    return x.reshape(n * c * h, w), 1


def _stepped_back(masks: Tensor, steps: Sequence[int], circular: bool) -> Tensor:
    """``[S, L]`` float64: each mask ``masks[k]`` (one axis, ``[S, L]`` bool) read at ``q +
    steps[k]`` (the position the step moves ``q`` to; wrapped when ``circular``, else 0 where it
    is off the axis)."""
    s, n = masks.shape
    at = torch.arange(n)[None, :] + torch.tensor(list(steps), dtype=torch.long).reshape(s, 1)
    read = masks.gather(1, at % n).double()
    return read if circular else read * ((at >= 0) & (at < n))


class LayerComparison:
    """The comparison of one layer's maps over a shift set: each shift's :class:`ShiftPlan`, its
    interior (a rectangle of the target's pixels), and the same mask on the source's pixels (its
    rows and columns stepped back, so the squared targets inside it are a sum over the source's
    squares); for maps of at most :data:`DENSE_PIXELS` pixels, each shift's dense operator.

    Args:
        offsets: ``[S, 2]`` the shifts at layer resolution.
        mode: the shift mode (``"circular"``, ``"fourier"``, ``"zeros"`` or ``"crop"``).
        interior: ``[S, H, W]`` bool, the interior mask of each shift
            (:func:`~shiftlab.measure.layer_records.interior_mask`), a rectangle or empty.
    """

    def __init__(self, offsets: Tensor, mode: str, interior: Tensor) -> None:
        self.plans = plan_shifts(offsets, mode)
        self.circular = mode in ("circular", "fourier")
        h, w = interior.shape[1:]
        #: small maps: every target of a pass made at once by its dense operator (:func:`_dense_operators`)
        self.dense = h * w <= DENSE_PIXELS and len(offsets) * (h * w) ** 2 <= DENSE_BUDGET
        rows, cols, self.columns = _rectangles(interior)
        #: ``[S]`` float64: the interior's pixels per shift
        self.interior_count = interior.sum(dim=(1, 2)).double()
        if self.dense:
            self.operators = _dense_operators(offsets, (h, w), mode)
            self.interior = interior.reshape(len(offsets), h * w).double()
        else:  # the interior's rows; and on the source's pixels, its rows and columns
            self.interior_rows = rows.double()
            self.source_rows = _stepped_back(rows, [p.step[0] for p in self.plans], self.circular)
            self.source_cols = _stepped_back(cols, [p.step[1] for p in self.plans], self.circular)
        self._on: dict[tuple[torch.device, torch.dtype], tuple[Tensor, ...]] = {}

    def _tensors(self, like: Tensor) -> tuple[Tensor, ...]:
        """On the device of ``like`` (copied once): ``(operators in its dtype, interior)`` for a
        dense comparison, else ``(interior_rows, source_rows, source_cols)``."""
        key = (like.device, like.dtype)
        if key not in self._on:
            kept = ((self.operators.to(like.dtype), self.interior) if self.dense
                    else (self.interior_rows, self.source_rows, self.source_cols))
            self._on[key] = tuple(t.to(like.device) for t in kept)
        return self._on[key]

    def sums(self, ref: Tensor, shifted: Tensor, shift_index: Tensor) -> tuple[Tensor, Tensor]:
        """The squared errors and targets of one pass, per shift.

        Args:
            ref: ``[n, C, H, W]`` the layer's map of the unshifted images, ``f_l(x)``.
            shifted: ``[s, n, C, H, W]`` its maps of the shifted images, ``f_l(T_d x)``.
            shift_index: ``[s]`` their positions in the shift set.

        Returns:
            ``(per_shift, ref2)``, float64 on the maps' device: ``per_shift [3, s]`` the sums over
            images, channels and pixels of ``(f_l(T_d x) - T_{d'} f_l(x))^2``, of the same over
            the interior pixels, and of ``(T_{d'} f_l(x))^2`` over the interior pixels; ``ref2``
            (0-d) the sum of ``f_l(x)^2``. Sums over one image row (and its channels) are
            taken in the maps' dtype, the rest in float64.
        """
        if self.dense:
            return self._dense_sums(ref, shifted, shift_index)
        return self._sliced_sums(ref, shifted, shift_index)

    def _dense_sums(self, ref: Tensor, shifted: Tensor, shift_index: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`sums` of a small map: the targets of all ``s`` shifts as one batched product
        of their dense operators with the reference (as in :meth:`_sliced_sums`, summed over
        images and channels per pixel in the maps' dtype, over pixels in float64)."""
        n, c, h, w = ref.shape
        s = len(shift_index)
        operators, interior = self._tensors(ref)
        where = shift_index.to(ref.device)
        stacked = operators[where].reshape(s * h * w, h * w)
        if is_channels_last(ref):  # pixels then channels: [n, h w, C]
            targets = torch.matmul(stacked, ref.permute(0, 2, 3, 1).reshape(n, h * w, c))
            targets = targets.view(n, s, h * w, c).transpose(0, 1)
            maps = shifted.permute(0, 1, 3, 4, 2).reshape(s, n, h * w, c)
        else:  # [n C, h w], a trailing channel axis of 1
            targets = torch.matmul(ref.reshape(n * c, h * w), stacked.T).view(n * c, s, h * w, 1).transpose(0, 1)
            maps = shifted.reshape(s, n * c, h * w, 1)
        # [s, h w]: summed over the channels (the innermost axis), then the images
        diff2 = (maps - targets).square_().sum(dim=3).sum(dim=1).double()
        tgt2 = targets.square_().sum(dim=3).sum(dim=1).double()
        per_shift = torch.stack([diff2.sum(dim=1), (diff2 * interior[where]).sum(dim=1),
                                 (tgt2 * interior[where]).sum(dim=1)])
        return per_shift, flat(ref).square().sum().double()

    def _sliced_sums(self, ref: Tensor, shifted: Tensor, shift_index: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`sums` of a map of more than :data:`DENSE_PIXELS` pixels: sources, steps by slices."""
        index = shift_index.tolist()
        h = ref.shape[-2]
        interior_rows, source_rows, source_cols = (m[shift_index.to(ref.device)] for m in self._tensors(ref))
        buffer = torch.empty_like(ref)
        rows, f = _rows(buffer)
        ref2map = _pixel_squares(ref, buffer)
        src2 = ref.new_empty((len(index), *ref.shape[-2:]))
        norms = ref.new_zeros((len(index), 2, rows.shape[0]))  # per row: its norm, that of its interior columns
        groups: dict[Source | None, list[int]] = {}
        for k, position in enumerate(index):
            groups.setdefault(self.plans[position].source, []).append(k)
        corner_dot = None
        for source, members in groups.items():
            if source is None:
                src, src2[members] = ref, ref2map
            else:
                if corner_dot is None and source.corner((ref.shape[-2], ref.shape[-1])):
                    corner_dot = _corner_dot(ref)
                src = _source_map(ref, source, corner_dot)
                src2[members] = _pixel_squares(src, buffer)
            for k in members:
                _difference(shifted[k], src, self.plans[index[k]].step, self.circular, buffer)
                torch.linalg.vector_norm(rows, dim=1, out=norms[k, 0])
                left, right = self.columns[index[k]]
                if right > left:
                    torch.linalg.vector_norm(rows[:, left * f: right * f], dim=1, out=norms[k, 1])
        squares = norms.double().square_()
        per_shift = torch.stack([squares[:, 0].sum(dim=1),
                                 (squares[:, 1].view(len(index), -1, h) * interior_rows[:, None, :]).sum(dim=(1, 2)),
                                 ((src2.double() * source_cols[:, None, :]).sum(dim=2) * source_rows).sum(dim=1)])
        return per_shift, ref2map.double().sum()
