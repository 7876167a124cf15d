"""Assertions for users' own test suites: is a module shift equivariant / invariant?

Like escnn's ``check_equivariance``, for translations: random input, every shift of a set, and an
``AssertionError`` naming the worst shift, its error and the tolerance when the property fails.
Elementwise tolerance as in :func:`torch.testing.assert_close`: ``|a - b| <= atol + rtol |b|``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from shiftlab.measure.layer_records import interior_mask, layer_offsets
from shiftlab.measure.runner import measuring, model_dtype
from shiftlab.measure.shifts import shift_many
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set
from shiftlab.measure.validation import check_module

__all__ = ["check_equivariant", "check_invariant"]

_DEFAULT_TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1.3e-6)}


def _random_input(module: nn.Module, input_shape: Sequence[int], dtype: torch.dtype | None, seed: int) -> Tensor:
    check_module(module)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (2, *shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) or (N, C, H, W) with positive sizes, got {tuple(input_shape)}")
    dtype = dtype or model_dtype(module) or torch.float64
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


def _forward(module: nn.Module, x: Tensor, what: str) -> Tensor:
    """``module(x)``, with torch's errors on a mismatched input turned into one naming the input
    and what to change, and a non-tensor output refused."""
    try:
        y = module(x)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"{what}: the module failed on a random input of shape {tuple(x.shape)} ({x.dtype}): {err}. "
                         "Check input_shape (channels first: (C, H, W)) and dtype against the module") from err
    if not isinstance(y, Tensor):
        raise ValueError(f"{what} needs a module that returns one tensor, got {type(y).__name__}; wrap the module to "
                         "return the output to check")
    return y


def _multiples(step: tuple[int, int], hw: tuple[int, int], mode: str) -> ShiftSet:
    """Default shifts: every multiple of ``step`` in the image (circular), or within 2 steps (zeros)."""
    if mode == "circular":
        ys, xs = range(0, hw[0], step[0]), range(0, hw[1], step[1])
        if len(ys) * len(xs) > 1024:
            ys, xs = range(-4 * step[0], 4 * step[0] + 1, step[0]), range(-4 * step[1], 4 * step[1] + 1, step[1])
    else:
        ys, xs = range(-2 * step[0], 2 * step[0] + 1, step[0]), range(-2 * step[1], 2 * step[1] + 1, step[1])
    return ShiftSet.from_list([(y, x) for y in ys for x in xs if abs(y) < hw[0] and abs(x) < hw[1]])


def _tolerance(dtype: torch.dtype, atol: float | None, rtol: float | None) -> tuple[float, float]:
    d_atol, d_rtol = _DEFAULT_TOL.get(dtype, (1e-3, 1e-3))
    return (d_atol if atol is None else atol), (d_rtol if rtol is None else rtol)


def _assert_close_per_shift(got: Tensor, want: Tensor, mask: Tensor | None, shift_set: ShiftSet, atol: float, rtol: float,
                            what: str) -> None:
    """``got``/``want``: ``[S, ...]``; raise AssertionError naming the worst shift."""
    excess = (got - want).abs() - (atol + rtol * want.abs())
    err = (got - want).abs()
    # NaN compares False with everything: count it as an infinite excess so NaN outputs fail.
    excess = torch.nan_to_num(excess, nan=math.inf)
    if mask is not None:
        zero = excess.new_zeros(())
        excess, err = torch.where(mask, excess, zero), torch.where(mask, err, zero)
    worst_excess = excess.flatten(1).max(dim=1).values
    if (worst_excess > 0).any():
        k = int(worst_excess.argmax())
        dy, dx = shift_set.as_tuples()[k]
        bad = int((worst_excess > 0).sum())
        raise AssertionError(
            f"not {what}: worst shift (dy, dx) = ({dy}, {dx}) with max abs error {float(err[k].max()):.3e} > "
            f"tolerance atol={atol:g} + rtol={rtol:g}*|reference|; {bad} of {len(shift_set)} shifts fail"
        )


def check_equivariant(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    shifts: ShiftSpec | None = None,
    mode: str = "circular",
    atol: float | None = None,
    rtol: float | None = None,
    border: int = 0,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> None:
    """Assert ``module(T_d x) == T_{d / s} module(x)`` for random ``x`` and every shift ``d``.

    The stride ``s`` is inferred from the input and output sizes; every shift must be a multiple of
    it. Default shifts: every multiple of the stride inside the image (circular; at most 1,024, else
    those within 4 strides) or within 2 strides (zeros). With ``border=b``, pixels within ``b``
    output pixels of the border, or of wrapped/filled regions, are ignored (zero padding).

    Args:
        module: maps ``[N, C, H, W]`` to ``[N, C', H / s, W / s]``; run in eval mode (no warning:
            fresh layers are in training mode), its modes restored after.
        input_shape: ``(C, H, W)`` (two images are drawn) or ``(N, C, H, W)``.
        atol, rtol: elementwise tolerance; default by dtype (float64: 1e-10, 1e-10).
        dtype: of the random input; default the module's parameter dtype, else float64.

    Raises:
        AssertionError: naming the worst shift, its error and the tolerance.
        ValueError: a shift that is not a multiple of the stride, or an output that is not 4-D.

    Example:
        >>> conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
        >>> check_equivariant(conv, (2, 8, 8))
    """
    x = _random_input(module, input_shape, dtype, seed)
    with measuring(module, warn=False):
        y = _forward(module, x, "check_equivariant")
        if y.dim() != 4:
            raise ValueError("check_equivariant needs a module with a 4-D output map; use check_invariant for vectors")
        hw, out_hw = (x.shape[-2], x.shape[-1]), (y.shape[-2], y.shape[-1])
        if hw[0] % out_hw[0] or hw[1] % out_hw[1]:
            raise ValueError(f"output size {out_hw} does not divide input size {hw}: no integer stride to be equivariant to")
        step = (hw[0] // out_hw[0], hw[1] // out_hw[1])
        shift_set = _multiples(step, hw, mode) if shifts is None else as_shift_set(shifts, x, mode)
        shift_set.check_fits(hw[0], hw[1], mode)
        out_off = layer_offsets(shift_set.offsets, hw, out_hw)
        if not bool((out_off == out_off.round()).all()):
            raise ValueError(f"every shift must be a multiple of the stride {step}; got {shift_set.as_tuples()}")
        shifted = shift_many(x, shift_set.offsets, mode)
        got = torch.stack([module(xs) for xs in shifted])
    want = shift_many(y, out_off, mode)
    mask = interior_mask(out_off, out_hw, border)[:, None, None] if border or mode == "zeros" else None
    _assert_close_per_shift(got, want, mask, shift_set, *_tolerance(x.dtype, atol, rtol), "shift equivariant")


def check_invariant(
    module: nn.Module,
    input_shape: Sequence[int],
    *,
    shifts: ShiftSpec | None = None,
    mode: str = "circular",
    atol: float | None = None,
    rtol: float | None = None,
    dtype: torch.dtype | None = None,
    seed: int = 0,
) -> None:
    """Assert ``module(T_d x) == module(x)`` for random ``x`` and every shift ``d`` (any output shape).

    Default shifts: every circular shift of the image (at most 1,024, else ``[-4, 4]^2``), or
    ``[-2, 2]^2`` for other modes.

    Raises:
        AssertionError: naming the worst shift, its error and the tolerance.

    Example:
        >>> gap = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.AdaptiveAvgPool2d(1)).double()
        >>> check_invariant(gap, (1, 6, 6))
    """
    x = _random_input(module, input_shape, dtype, seed)
    hw = (x.shape[-2], x.shape[-1])
    shift_set = _multiples((1, 1), hw, mode) if shifts is None else as_shift_set(shifts, x, mode)
    shift_set.check_fits(hw[0], hw[1], mode)
    with measuring(module, warn=False):
        y = _forward(module, x, "check_invariant")
        got = torch.stack([module(xs) for xs in shift_many(x, shift_set.offsets, mode)])
    want = y.unsqueeze(0).expand_as(got)
    _assert_close_per_shift(got, want, None, shift_set, *_tolerance(x.dtype, atol, rtol), "shift invariant")
