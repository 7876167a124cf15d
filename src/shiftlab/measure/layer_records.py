"""Per-layer accumulators of equivariance errors, filled inside forward hooks.

A forward pass sees a batch ``[x; T_{d_1} x; ...; T_{d_s} x]`` (``(1 + s) n`` images). For a layer
with output ``f_l`` of spatial size ``H_l x W_l`` and input size ``H x W``, the hook compares
``f_l(T_d x)`` with ``T_{d'} f_l(x)``, ``d' = d * (H_l / H, W_l / W)``: a plain shift when ``d'`` is
integral (*aligned*), the band-limited fractional shift otherwise (*unaligned*; the response of
an ideal alias-free layer). It adds the squared errors and squared reference norms per shift, over
the full map and over the *interior*: pixels at least ``b`` from the border in both
``f_l(T_d x)`` and ``T_{d'} f_l(x)`` (so wrapped, filled and border-band pixels are masked).
Only these sums are kept, so memory does not grow with depth, and two accumulators of the same
layer add up (``+``) to the sums of both sets of images (blocks, or processes' shards).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from shiftlab.measure.layer_errors import LayerComparison, flat

__all__ = ["CONSTANT_ULPS", "LayerAccumulator", "chain_stride", "constant_maps", "interior_mask", "layer_offsets",
           "layer_stride"]

#: A map (one image, one channel, ``[H_l, W_l]``) counts as constant when its values spread
#: (max - min) over at most this many units of rounding of its dtype (``torch.finfo(dtype).eps``)
#: times its largest magnitude: equal values, up to the rounding of the arithmetic that made them
#: (exactly equal for a map of zeros).
CONSTANT_ULPS = 8


def layer_stride(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """Integer stride of one resampling step: ``H / H_l`` rounded to the nearest integer >= 1 per axis.

    Layers that lose or add border pixels (a 2x2 max-pool with stride 1 maps 28 to 27; a floor
    pool maps 7 to 3) keep their nominal stride (1 and 2); their border mismatch shows up in the
    full error, not the interior one. Over several steps the rounding can be wrong (28 -> 14 -> 7
    -> 3 is stride 8, not 28 / 3 = 9): :func:`chain_stride` multiplies the steps instead.
    """
    return tuple(max(1, round(i / o)) for i, o in zip(in_hw, out_hw, strict=True))  # type: ignore[return-value]


def chain_stride(input_stride: tuple[int, int], source_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """The stride of a map of size ``out_hw`` made from a map of size ``source_hw`` whose own
    stride (relative to the network input) is ``input_stride``: the input's stride times this
    step's (:func:`layer_stride`).

    Example:
        >>> chain_stride(chain_stride(chain_stride((1, 1), (28, 28), (14, 14)), (14, 14), (7, 7)), (7, 7), (3, 3))
        (8, 8)
    """
    step = layer_stride(source_hw, out_hw)
    return (input_stride[0] * step[0], input_stride[1] * step[1])


def layer_offsets(offsets: Tensor, in_hw: tuple[int, int], out_hw: tuple[int, int],
                  stride: tuple[int, int] | None = None) -> Tensor:
    """Input shifts ``[S, 2]`` expressed at a layer's resolution: ``d / s_l``, with the layer's
    ``stride`` when known, else :func:`layer_stride` of the input and output sizes."""
    sy, sx = stride if stride is not None else layer_stride(in_hw, out_hw)
    scaled = offsets / torch.tensor([sy, sx], dtype=torch.float64)
    # Snap values within rounding of an integer so aligned shifts are exact.
    near = torch.round(scaled)
    return torch.where((scaled - near).abs() < 1e-9, near, scaled)


def interior_mask(offsets: Tensor, hw: tuple[int, int], border: int) -> Tensor:
    """Boolean ``[S, H_l, W_l]``: pixel ``p`` with ``p`` and ``p - d'`` both ``border`` or more from the edge.

    Fractional ``d'`` is rounded away from zero (conservative). ``p - d'`` outside the map means the
    pixel wrapped (circular) or was filled (zeros), so it is masked too.
    """
    h, w = hw
    d = offsets.sign() * offsets.abs().ceil()

    def axis(n: int, dd: Tensor) -> Tensor:
        idx = torch.arange(n, dtype=torch.float64)[None, :]
        src_lo = idx - dd[:, None].ceil()
        src_hi = idx - dd[:, None].floor()
        inside = (idx >= border) & (idx < n - border)
        return inside & (src_lo >= border) & (src_hi < n - border)

    return axis(h, d[:, 0])[:, :, None] & axis(w, d[:, 1])[:, None, :]


@functools.lru_cache(maxsize=64)
def _comparison(offsets: tuple[tuple[float, ...], ...], hw: tuple[int, int], border: int, mode: str) -> LayerComparison:
    """The :class:`~shiftlab.measure.layer_errors.LayerComparison` of a layer's shifts ``[S, 2]``
    (at its resolution), map size, interior band and mode; made once per process for each (a
    measurement makes one accumulator per layer, and measurements repeat)."""
    shifts = torch.tensor(offsets, dtype=torch.float64).reshape(-1, 2)
    return LayerComparison(shifts, mode, interior_mask(shifts, hw, border))


@dataclass
class LayerAccumulator:
    """Running sums for one layer (one call site) over every shift of the set.

    Attributes:
        name, kind: module path and class name.
        shape: output ``(C, H_l, W_l)``.
        in_hw: the network input's ``(H, W)``.
        border: interior band ``b`` at layer resolution.
        offsets: ``[S, 2]`` shifts at layer resolution.
        stride: the layer's stride relative to the input (:func:`chain_stride`); default
            :func:`layer_stride` of ``in_hw`` and the map size.
        track_constant: also count the reference maps that are constant (:data:`CONSTANT_ULPS`),
            in ``maps`` and ``constant_maps`` (a model's dense output, whose EQ-T a constant map
            leaves undefined: :meth:`eq_t_db`); without it both stay 0.
    """

    name: str
    kind: str
    shape: tuple[int, int, int]
    in_hw: tuple[int, int]
    border: int
    offsets: Tensor
    mode: str
    stride: tuple[int, int] = None  # type: ignore[assignment]  # set in __post_init__ when not given
    track_constant: bool = False
    sq_err: Tensor = field(init=False)
    sq_ref: Tensor = field(init=False)
    sq_err_in: Tensor = field(init=False)
    sq_ref_in: Tensor = field(init=False)
    n_in: Tensor = field(init=False)
    maps: Tensor = field(init=False)
    constant_maps: Tensor = field(init=False)
    peak_lo: float = math.inf
    peak_hi: float = -math.inf
    #: The per-shift sums ``[S]`` (float64) that add across images. ``maps`` and ``constant_maps``
    #: count the reference maps (image, channel) compared at each shift, and the constant ones.
    SUMS: ClassVar[tuple[str, ...]] = ("sq_err", "sq_ref", "sq_err_in", "sq_ref_in", "n_in", "maps", "constant_maps")

    def __post_init__(self) -> None:
        if self.stride is None:
            self.stride = layer_stride(self.in_hw, self.shape[1:])
        s = self.offsets.shape[0]
        self.sq_err, self.sq_ref, self.sq_err_in, self.sq_ref_in = (torch.zeros(s, dtype=torch.float64) for _ in range(4))
        self.n_in, self.maps, self.constant_maps = (torch.zeros(s, dtype=torch.float64) for _ in range(3))
        self.aligned = torch.all(self.offsets == torch.round(self.offsets), dim=1)
        self._compare = _comparison(tuple(map(tuple, self.offsets.tolist())), self.shape[1:], self.border, self.mode)

    def __add__(self, other: LayerAccumulator) -> LayerAccumulator:
        """The sums of both accumulators: the same layer measured on two sets of images (two
        blocks, or two processes' shards). Sums add, ``peak_lo``/``peak_hi`` take the min/max;
        ``ValueError`` when they describe different layers or shifts."""
        mine = (self.name, self.kind, self.shape, self.in_hw, self.border, self.mode, self.stride, self.track_constant)
        theirs = (other.name, other.kind, other.shape, other.in_hw, other.border, other.mode, other.stride,
                  other.track_constant)
        if mine != theirs or not torch.equal(self.offsets, other.offsets):
            raise ValueError(f"cannot add the sums of different layers or shift sets: {mine} vs {theirs}")
        total = LayerAccumulator(*mine[:5], self.offsets, self.mode, self.stride, self.track_constant)
        for name in self.SUMS:
            setattr(total, name, getattr(self, name) + getattr(other, name))
        total.peak_lo, total.peak_hi = min(self.peak_lo, other.peak_lo), max(self.peak_hi, other.peak_hi)
        return total

    def add(self, output: Tensor, n: int, shift_index: Tensor) -> None:
        """Accumulate from a hooked output ``[(1 + s) n, C, H_l, W_l]`` (reference images first).

        The differences are taken in the output's precision (float32 or float64; half precision
        is widened to float32) and summed over images and channels in it, then accumulated in
        float64. ``ValueError`` when the output holds NaN or Inf.
        """
        work = output if output.dtype in (torch.float32, torch.float64) else output.float()
        ref = work[:n]
        shifted = work[n:].reshape(len(shift_index), n, *work.shape[1:])
        per_shift, ref2 = self._compare.sums(ref, shifted, shift_index)
        lo, hi = flat(ref).aminmax()
        sums = torch.cat([per_shift.flatten(), torch.stack([ref2, lo.double(), hi.double()])]).cpu()
        if not torch.isfinite(sums).all():  # NaN / Inf anywhere reaches these sums
            raise ValueError(f"layer {self.name!r} produced NaN or Inf outputs; check the weights (e.g. a diverged "
                             "checkpoint) and the input scaling")
        s = len(shift_index)
        for name, row in zip(("sq_err", "sq_err_in", "sq_ref_in"), sums[:3 * s].view(3, s), strict=True):
            getattr(self, name).index_add_(0, shift_index, row)
        self.sq_ref[shift_index] += sums[3 * s]
        self.n_in[shift_index] += self._compare.interior_count[shift_index] * (n * output.shape[1])
        if self.track_constant:
            self.maps[shift_index] += n * output.shape[1]
            self.constant_maps[shift_index] += float(constant_maps(ref, output.dtype).sum())
        self.peak_lo = min(self.peak_lo, float(sums[-2]))
        self.peak_hi = max(self.peak_hi, float(sums[-1]))

    def relative_errors(self, interior: bool = False) -> Tensor:
        """Relative L2 error per shift ``[S]``; NaN where undefined (empty interior)."""
        num, den = (self.sq_err_in, self.sq_ref_in) if interior else (self.sq_err, self.sq_ref)
        err = torch.where(den > 0, (num / den.clamp_min(1e-300)).sqrt(), torch.where(num > 0, math.inf, 0.0))
        if interior:
            err = torch.where(self.n_in > 0, err, math.nan)
        return err

    def constant_share(self) -> float | None:
        """The share of the reference maps (one per image and channel, over every shift compared)
        that are constant (:func:`constant_maps`); None when they were not counted."""
        total = float(self.maps.sum())
        return float(self.constant_maps.sum()) / total if total else None

    def eq_t_db(self) -> float | None:
        """StyleGAN3's EQ-T: ``10 log10(peak^2 / MSE)`` over masked pixels of every non-zero shift.

        ``peak`` is the reference output's dynamic range (max - min). None without masked pixels;
        NaN (undefined, not perfect) when every reference map is constant (counted with
        ``track_constant``): a constant map has nothing that could move, whatever the model does
        with shifts; ``inf`` when the output varies and the shifted outputs match it exactly.
        """
        nonzero = (self.offsets != 0).any(dim=1)
        count = self.n_in[nonzero].sum()
        if count == 0:
            return None
        if self.constant_share() == 1.0:
            return math.nan
        mse = float(self.sq_err_in[nonzero].sum() / count)
        peak = self.peak_hi - self.peak_lo
        if mse == 0:
            return math.inf
        return 10 * math.log10(peak**2 / mse) if peak > 0 else -math.inf


def constant_maps(maps: Tensor, dtype: torch.dtype) -> Tensor:
    """Which of ``maps [n, C, H_l, W_l]`` are constant, ``[n, C]`` bool: values spread over at most
    :data:`CONSTANT_ULPS` units of rounding of ``dtype`` (the dtype the model computed them in)
    times the map's largest magnitude.

    Example:
        >>> constant_maps(torch.stack([torch.full((3, 3), 0.5), torch.eye(3)])[None], torch.float32)
        tensor([[ True, False]])
    """
    lo, hi = maps.flatten(2).aminmax(dim=2)
    return (hi - lo) <= CONSTANT_ULPS * torch.finfo(dtype).eps * torch.maximum(lo.abs(), hi.abs())

