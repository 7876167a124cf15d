"""Circular padding with a cheap backward pass that keeps the input's layout
(``docs/definitions.md``, "Circular padding").

``F.pad(x, pad, mode="circular")`` is a chain of in-place slice copies, and autograd
differentiates it copy by copy: each one zero-fills a full-size gradient, copies slices and
adds, about 17 kernel launches for one 2-D pad. It also returns a contiguous tensor for a
channels-last input, so every later layer of a channels-last network runs in the slower layout.
:func:`circular_pad2d` writes the same values in the input's layout (the interior, then the
wrapped columns, then the wrapped rows) and computes the gradient directly: the padded
gradient's wrapped borders are added back onto the rows and columns they were copied from, in
the reverse order of ``F.pad``'s copies (bottom, top, right, left), which is the order autograd
adds them in, so the gradient is equal *bit for bit*. :class:`Conv2d` and :class:`CircularPad2d`
are ``nn.Conv2d`` and ``nn.CircularPad2d`` (same arguments, ``state_dict`` and outputs) that pad
this way; the zoo, BlurPool and APS use them.

Training steps of the zoo's channels-last models at width 16 on ``(64, 1, 48, 48)`` batches, one
thread, are 1.4-3.2x faster (``benchmarks/bench_circular_pad.py`` prints the ratios) and end with
the same weights, except APS models *with circular convolutions*: their phase choice (an argmax
over polyphase norms) can flip where two norms tie to rounding, and a tensor's layout changes
the rounding of those norms, so there the two layouts can give runs that differ as two seeds do.
While ``torch.jit``/``torch.export``/ONNX trace a model, ``F.pad`` runs: exporters see the
standard operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftlab._layout import is_channels_last

__all__ = ["CircularPad2d", "Conv2d", "circular_pad2d"]


class _CircularPad2dFunction(torch.autograd.Function):
    """``F.pad(x, pad, mode="circular")`` for non-negative ``pad`` with a direct backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, pad: tuple[int, ...]) -> Tensor:
        ctx.pad = pad
        return _padded_copy(x, pad)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        left, right, top, bottom = ctx.pad
        g = grad.clone()
        h, w = g.shape[-2:]
        # the forward copied left, right, top, bottom (rows span the padded width); undo in reverse
        if bottom:
            g[..., top:top + bottom, :] += g[..., h - bottom:, :]
        if top:
            g[..., h - top - bottom:h - bottom, :] += g[..., :top, :]
        if right:
            g[..., left:left + right] += g[..., w - right:]
        if left:
            g[..., w - left - right:w - right] += g[..., :left]
        return g[..., top:h - bottom, left:w - right], None


def _padded_copy(x: Tensor, pad: tuple[int, ...]) -> Tensor:
    """``F.pad(x, pad, mode="circular")``'s values for ``0 <= pad <= size``, written in ``x``'s layout
    (channels-last stays channels-last): the interior, the left and right columns, then the top and
    bottom rows (corners included) copied from the padded rows."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    layout = torch.channels_last if is_channels_last(x) else torch.contiguous_format
    out = torch.empty((*x.shape[:-2], h + top + bottom, w + left + right), dtype=x.dtype, device=x.device,
                      memory_format=layout)
    rows = slice(top, top + h)
    out[..., rows, left:left + w] = x
    if left:
        out[..., rows, :left] = x[..., :, w - left:]
    if right:
        out[..., rows, left + w:] = x[..., :, :right]
    if top:
        out[..., :top, :] = out[..., h:h + top, :]
    if bottom:
        out[..., top + h:, :] = out[..., top:top + bottom, :]
    return out


def _traced() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def circular_pad2d(x: Tensor, pad: Sequence[int]) -> Tensor:
    """Pad the last two dims of ``x`` circularly: the values and the gradient of
    ``F.pad(x, pad, mode="circular")`` bit for bit, the output in ``x``'s memory format, the gradient
    computed in 4 slice additions.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``.
        pad: ``(left, right, top, bottom)``, each ``<=`` the size it wraps (as ``F.pad`` requires).
            A negative entry (a crop) or a larger one goes to ``F.pad`` (which crops, or raises).

    Returns:
        ``(..., H + top + bottom, W + left + right)``.

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> circular_pad2d(x, (1, 1, 0, 0))[0, 0, 0].tolist()
        [2.0, 0.0, 1.0, 2.0, 0.0]
    """
    ints = tuple(int(p) for p in pad)
    if len(ints) != 4:
        raise ValueError(f"circular_pad2d: pad must be (left, right, top, bottom), got {ints}")
    h, w = x.shape[-2:] if x.dim() >= 2 else (0, 0)
    if _traced() or x.dim() not in (3, 4) or min(ints) < 0 or max(ints[:2]) > w or max(ints[2:]) > h:
        return F.pad(x, ints, mode="circular")  # F.pad's own checks and messages for impossible pads
    if torch.is_grad_enabled() and x.requires_grad:
        padded: Tensor = _CircularPad2dFunction.apply(x, ints)  # type: ignore[no-untyped-call]  # torch leaves apply unannotated
        return padded
    return _padded_copy(x, ints)


class CircularPad2d(nn.CircularPad2d):
    """``nn.CircularPad2d`` whose gradient is computed by :func:`circular_pad2d`.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(..., H + top + bottom, W + left + right)`.
    """

    def forward(self, x: Tensor) -> Tensor:
        return circular_pad2d(x, self.padding)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``padding_mode="circular"`` pads with :func:`circular_pad2d`.

    It is an ``nn.Conv2d`` (same arguments, ``state_dict``, outputs and gradients); other padding
    modes are ``nn.Conv2d``'s own.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` or :math:`(C_{in}, H, W)`.
        - Output: as ``nn.Conv2d``.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "circular":
            out: Tensor = super()._conv_forward(input, weight, bias)
            return out
        padded = circular_pad2d(input, self._reversed_padding_repeated_twice)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
