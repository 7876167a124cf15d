"""Circular padding with a cheap backward pass (``docs/definitions.md``, "Circular padding").

``F.pad(x, pad, mode="circular")`` is a chain of in-place slice copies, and autograd
differentiates it copy by copy: each one zero-fills a full-size gradient, copies slices and
adds, about 17 kernel launches for one 2-D pad. In a small network trained on a CPU that is a
third of a training step (``strided_gap`` at width 16, ``(64, 1, 48, 48)`` batches, one thread:
``benchmarks/bench_circular_pad.py`` prints the ratio). :func:`circular_pad2d` computes the same
forward with ``F.pad`` and the gradient directly: the padded gradient's wrapped borders are
added back onto the rows and columns they were copied from, in the reverse order of the forward
copies (bottom, top, right, left), which is the order autograd adds them in, so the gradient is
equal *bit for bit* and training is unchanged. :class:`Conv2d` and :class:`CircularPad2d` are
``nn.Conv2d`` and ``nn.CircularPad2d`` (same arguments, ``state_dict`` and outputs) that pad
this way; the zoo, BlurPool and APS use them.

Where nothing needs a gradient, or while ``torch.jit``/``torch.export``/ONNX trace the model,
``F.pad`` itself runs: exporters see the standard operator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CircularPad2d", "Conv2d", "circular_pad2d"]


class _CircularPad2dFunction(torch.autograd.Function):
    """``F.pad(x, pad, mode="circular")`` for non-negative ``pad`` with a direct backward."""

    @staticmethod
    def forward(ctx, x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:  # type: ignore[override]
        ctx.pad = pad
        return F.pad(x, pad, mode="circular")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
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


def _traced() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def circular_pad2d(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Pad the last two dims of ``x`` circularly: ``F.pad(x, pad, mode="circular")``, with the same
    values and the same gradient bit for bit, the gradient computed in 4 slice additions.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``.
        pad: ``(left, right, top, bottom)``, each ``<=`` the size it wraps (as ``F.pad`` requires).
            A negative entry (a crop) goes to ``F.pad`` unchanged.

    Returns:
        ``(..., H + top + bottom, W + left + right)``.

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> circular_pad2d(x, (1, 1, 0, 0))[0, 0, 0].tolist()
        [2.0, 0.0, 1.0, 2.0, 0.0]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) != 4:
        raise ValueError(f"circular_pad2d: pad must be (left, right, top, bottom), got {pad}")
    if min(pad) < 0 or x.dim() not in (3, 4) or not (torch.is_grad_enabled() and x.requires_grad) or _traced():
        return F.pad(x, pad, mode="circular")
    return _CircularPad2dFunction.apply(x, pad)


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
            return super()._conv_forward(input, weight, bias)
        padded = circular_pad2d(input, self._reversed_padding_repeated_twice)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
