"""shiftlab's per-layer comparison before issue 23, kept as the reference the fast path is tested
against: for every shift it materialises the shifted reference maps ``T_{d'} f_l(x)`` with
:func:`~shiftlab.measure.shifts.shift_many` (slice copies when aligned, an FFT per group of two
shifts otherwise), subtracts, squares and sums over images and channels per pixel, squares the
targets the same way, and masks the per-pixel sums (the straightforward way, not the fast path's
grouped sources and separable operators).

:class:`LegacyLayerAccumulator` is a :class:`~shiftlab.measure.layer_records.LayerAccumulator`
whose ``add`` is that code; patch it into ``shiftlab.measure.equivariance_recorder`` to measure a
whole model the old way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shiftlab.measure.layer_records import LayerAccumulator, constant_maps, interior_mask
from shiftlab.measure.shifts import shift_many

#: Shifted references built at once per layer (the old bound on a layer's extra memory).
TARGETS_AT_ONCE = 2


class LegacyLayerAccumulator(LayerAccumulator):
    """The accumulator with the old comparison (the sums and everything else are the live class's)."""

    def _legacy_sums(self, ref: Tensor, shifted: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """``(sum |f(T_d x) - T_{d'} f(x)|^2, sum |T_{d'} f(x)|^2)`` over images and channels per
        pixel, ``[s, H_l, W_l]`` float64 each, for the shifts ``idx``."""
        mode = "zeros" if self.mode == "crop" else self.mode
        diff2 = torch.empty((len(idx), *ref.shape[-2:]), dtype=torch.float64, device=ref.device)
        tgt2 = torch.empty_like(diff2)
        aligned = self.aligned[idx]
        for sel in (aligned, ~aligned):
            for where in sel.nonzero()[:, 0].to(ref.device).split(TARGETS_AT_ONCE):
                if not where.numel():  # the one change: the old code shifted an empty group (an FFT error in fourier mode)
                    continue
                target = shift_many(ref, self.offsets[idx][where.cpu()], mode)  # [g, n, C, H_l, W_l]
                tgt2[where] = target.square().sum(dim=(1, 2)).double()
                diff2[where] = target.sub_(shifted[where]).square_().sum(dim=(1, 2)).double()
        return diff2, tgt2

    def add(self, output: Tensor, n: int, shift_index: Tensor) -> None:
        work = output if output.dtype in (torch.float32, torch.float64) else output.float()
        ref = work[:n]
        shifted = work[n:].reshape(len(shift_index), n, *work.shape[1:])
        diff2, tgt2 = self._legacy_sums(ref, shifted, shift_index)
        ref2 = ref.square().sum().double()
        if not (torch.isfinite(ref2) and torch.isfinite(diff2).all()):
            raise ValueError(f"layer {self.name!r} produced NaN or Inf outputs")
        mask = interior_mask(self.offsets, self.shape[1:], self.border)[shift_index].to(diff2.device, diff2.dtype)
        self.sq_err[shift_index] += diff2.sum(dim=(1, 2)).cpu()
        self.sq_ref[shift_index] += ref2.cpu()
        self.sq_err_in[shift_index] += (diff2 * mask).sum(dim=(1, 2)).cpu()
        self.sq_ref_in[shift_index] += (tgt2 * mask).sum(dim=(1, 2)).cpu()
        self.n_in[shift_index] += mask.sum(dim=(1, 2)).cpu() * n * output.shape[1]
        if self.track_constant:
            self.maps[shift_index] += n * output.shape[1]
            self.constant_maps[shift_index] += float(constant_maps(ref, output.dtype).sum())
        self.peak_lo = min(self.peak_lo, float(ref.min()))
        self.peak_hi = max(self.peak_hi, float(ref.max()))
