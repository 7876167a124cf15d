"""The dense (stride-1) max of MaxBlurPool and MaxAPSPool, fast where nothing needs its gradient
(``docs/definitions.md``, "Conversion", the dense max).

``torch.nn.functional.max_pool2d`` with ``stride=1`` is slow on CPU: on a ``(256, 16, 49, 49)``
batch with ``kernel_size=2`` it takes about 5x as long as the same max taken separably, first over
columns, then over rows, with :func:`torch.maximum` (``benchmarks/bench_dense_max.py`` prints the
ratios). The two are equal bit for bit (a max rounds nothing; NaN propagates in both), so
:class:`MaxPool2d` takes the separable path when no gradient is needed (``torch.no_grad``,
``torch.inference_mode``, or an input that does not require one: every measurement) and
``nn.MaxPool2d``'s own kernel otherwise. Training is therefore unchanged: ``torch.maximum``
splits the gradient between tied inputs where ``max_pool2d`` gives it all to the first, and
after a ReLU ties are common.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MaxPool2d", "dense_max2d"]


def dense_max2d(x: Tensor, kernel_size: int) -> Tensor:
    """The max over every ``kernel_size x kernel_size`` window, stride 1, no padding.

    Equal bit for bit to ``F.max_pool2d(x, kernel_size, stride=1)``.

    Args:
        x: ``(N, C, H, W)`` or ``(C, H, W)``, with ``H, W >= kernel_size``.
        kernel_size: window size ``k >= 1``.

    Returns:
        ``(..., H - k + 1, W - k + 1)``.

    Example:
        >>> import torch.nn.functional as F
        >>> x = torch.rand(2, 3, 9, 9)
        >>> torch.equal(dense_max2d(x, 2), F.max_pool2d(x, 2, stride=1))
        True
    """
    k = kernel_size
    h, w = x.shape[-2:]
    if h < k or w < k:
        raise ValueError(f"dense_max2d: input {h}x{w} is smaller than the {k}x{k} window")
    cols = x[..., :, : w - k + 1]
    for i in range(1, k):
        cols = torch.maximum(cols, x[..., :, i : w - k + 1 + i])
    out = cols[..., : h - k + 1, :]
    for i in range(1, k):
        out = torch.maximum(out, cols[..., i : h - k + 1 + i, :])
    return out


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` whose stride-1 max takes :func:`dense_max2d` when no gradient is needed.

    Same name, arguments, ``state_dict`` and outputs as ``nn.MaxPool2d`` (it is one), so per-layer
    profiles name its kind ``MaxPool2d`` either way and checkpoints load into both. Only a plain
    window (``stride=1``, no padding, no dilation, no ``ceil_mode``, no indices) on a 3-D or 4-D
    input goes the fast way; everything else, and anything that needs a gradient, is
    ``nn.MaxPool2d.forward``.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: as ``nn.MaxPool2d``; :math:`(..., H - k + 1, W - k + 1)` for the fast path.

    Example:
        >>> pool = MaxPool2d(2, stride=1)
        >>> x = torch.rand(1, 4, 6, 6)
        >>> with torch.no_grad():
        ...     torch.equal(pool(x), nn.MaxPool2d(2, stride=1)(x))
        True
    """

    def _window(self) -> int | None:
        """The window size when this pool is a plain square stride-1 window, else None."""
        def pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
            return (v, v) if isinstance(v, int) else tuple(v)

        (ky, kx), stride, padding, dilation = (pair(v) for v in (self.kernel_size, self.stride, self.padding,
                                                                 self.dilation))
        plain = stride == (1, 1) and padding == (0, 0) and dilation == (1, 1)
        return ky if ky == kx and plain and not self.ceil_mode and not self.return_indices else None

    def forward(self, x: Tensor) -> Tensor:
        k = self._window()
        if k is None or x.dim() not in (3, 4) or (torch.is_grad_enabled() and x.requires_grad) \
                or x.shape[-1] < k or x.shape[-2] < k:
            out: Tensor = super().forward(x)
            return out
        return dense_max2d(x, k)
