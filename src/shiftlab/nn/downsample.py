"""Shift-robust replacements for max-pooling and strided convolutions.

The patterns of the two papers, as small composable layers:

- Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019): evaluate the
  dense (stride-1) operation, then anti-alias while subsampling: ``MaxPool(k, s)`` becomes
  ``MaxPool(k, 1) -> BlurPool(s)`` (:class:`MaxBlurPool2d`) and ``Conv(s)`` becomes
  ``Conv(1) -> BlurPool(s)`` (:func:`blurred_conv`).
- Chaman & Dokmanic, *Truly shift-invariant CNNs* (CVPR 2021): the same with adaptive
  polyphase sampling as the subsampler (:class:`MaxAPSPool2d`, :func:`aps_conv`), which makes
  circular-padded networks exactly invariant to every circular shift.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict

from torch import Tensor, nn

from .aps import APSPool2d, Norm, _parse_norm
from .blurpool import BlurPool2d, _check_input, _check_int
from .circular_pad import circular_pad2d
from .dense_max import MaxPool2d

__all__ = ["MaxAPSPool2d", "MaxBlurPool2d", "aps_conv", "blurred_conv"]


class MaxBlurPool2d(nn.Module):
    """Anti-aliased max-pooling: ``MaxPool2d(kernel_size, stride=1)`` then ``BlurPool2d(stride)``.

    Zhang's MaxBlurPool (ICML 2019), a drop-in for ``nn.MaxPool2d(kernel_size, stride)``. The
    max is evaluated densely (children ``pool`` and ``blur``), so no padding is added: an input
    of 28 becomes 27 after the max and 14 after the blur.

    Args:
        channels: number of input channels ``C``.
        kernel_size: max-pooling window (int, square).
        stride: subsampling factor of the blur (>= 1).
        filt_size: binomial filter size 1..7 (1 gives ``MaxPool(k, 1)`` then plain subsampling).
        pad_type: padding of the blur: ``reflect``, ``replicate``, ``zeros`` or ``circular``.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, \\lceil (H - k + 1) / s \\rceil, \\lceil (W - k + 1) / s \\rceil)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import MaxBlurPool2d
        >>> pool = MaxBlurPool2d(16, kernel_size=2, stride=2)
        >>> pool(torch.rand(2, 16, 28, 28)).shape
        torch.Size([2, 16, 14, 14])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 2,
        stride: int = 2,
        filt_size: int = 4,
        pad_type: str = "reflect",
    ) -> None:
        super().__init__()
        self.channels = channels
        # a module: shiftlab.zoo puts a circular pad in front of the max (Sequential(pad, pool))
        self.pool: nn.Module = MaxPool2d(_check_int(kernel_size, "kernel_size", 1), stride=1)
        self.blur = BlurPool2d(channels, stride=stride, filt_size=filt_size, pad_type=pad_type)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.blur(self.pool(_check_input(x, self.channels)))
        return out


class MaxAPSPool2d(nn.Module):
    """Max-pooling with adaptive polyphase sampling (Chaman & Dokmanic, CVPR 2021).

    A drop-in for ``nn.MaxPool2d(kernel_size, stride)`` that keeps the size divisible by the
    stride and stays exactly circular-shift consistent: circular pad ``(0, k - 1, 0, k - 1)``,
    ``MaxPool2d(k, stride=1)`` (so ``H x W`` is kept and the max is circularly equivariant),
    then :class:`APSPool2d` (child ``aps``, blur with circular padding).

    Prefer ``norm=2`` (the paper's choice). The dense max-pool copies each local maximum into
    a ``k x k`` block, hence into several phases; with ``norm=inf`` and no blur the phases
    then tie on non-negative inputs and the choice is no longer shift invariant (a
    ``UserWarning`` says so).

    Args:
        channels: number of input channels ``C``.
        kernel_size: max-pooling window (int, square).
        stride: subsampling factor (>= 2).
        norm: APS selection norm: ``1``, ``2`` or ``inf`` (see the note above).
        filt_size: binomial blur size 1..7 before APS (1 means no blur).

    Shape:
        - Input: :math:`(N, C, H, W)`, ``H`` and ``W`` divisible by ``stride``.
        - Output: :math:`(N, C, H / stride, W / stride)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import MaxAPSPool2d
        >>> pool = MaxAPSPool2d(16, kernel_size=2, stride=2)
        >>> pool(torch.rand(2, 16, 28, 28)).shape
        torch.Size([2, 16, 14, 14])
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 2,
        stride: int = 2,
        norm: Norm = 2,
        filt_size: int = 1,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = _check_int(kernel_size, "kernel_size", 1)
        self.pool = MaxPool2d(kernel_size, stride=1)
        self.aps = APSPool2d(channels, stride=stride, norm=norm, filt_size=filt_size)
        if _parse_norm(norm) == math.inf and kernel_size >= 2 and filt_size == 1:
            warnings.warn(
                "MaxAPSPool2d(norm=inf, kernel_size>=2, filt_size=1): the max-pool copies the "
                "largest value into several phases, so on non-negative inputs (e.g. after ReLU) "
                "they tie in the inf-norm and shift invariance is lost; use norm=2 or a blur",
                UserWarning,
                stacklevel=2,
            )

    def forward(self, x: Tensor) -> Tensor:
        extra = self.kernel_size - 1
        padded = circular_pad2d(_check_input(x, self.channels), (0, extra, 0, extra))
        out: Tensor = self.aps(self.pool(padded))
        return out


def _stride1_copy(conv: nn.Conv2d) -> tuple[nn.Conv2d, int]:
    """A deep copy of ``conv`` (same weights, hooks, subclass) with stride 1, and the old stride."""
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected an nn.Conv2d, got {type(conv).__name__}")
    stride_y, stride_x = conv.stride
    if stride_y != stride_x:
        raise ValueError(f"only square strides are supported, got stride={conv.stride}")
    if stride_y == 1:
        raise ValueError("conv already has stride 1; there is no subsampling to replace")
    dense = copy.deepcopy(conv)
    dense.stride = (1, 1)
    return dense, stride_y


def _conv_then(dense: nn.Conv2d, pool: nn.Module) -> nn.Sequential:
    """``Sequential(conv=dense, pool=pool)`` with ``pool``'s buffers on the conv's device/dtype."""
    pool.to(device=dense.weight.device, dtype=dense.weight.dtype)
    return nn.Sequential(OrderedDict([("conv", dense), ("pool", pool)]))


def blurred_conv(conv: nn.Conv2d, filt_size: int = 4, pad_type: str = "reflect") -> nn.Sequential:
    """Turn a strided convolution into ``conv(stride 1) -> BlurPool2d(stride)`` (Zhang 2019).

    The stride-1 convolution is a deep copy of ``conv`` (weights and bias values copied, same
    padding, dilation, groups and padding mode), so trained weights are kept; the original
    module is not modified. With ``filt_size=1`` the result computes exactly the original
    strided convolution (dense convolution, then ``[..., ::s, ::s]``); larger filters
    anti-alias it. Output sizes equal the original's.

    Args:
        conv: a ``nn.Conv2d`` with a square stride ``s >= 2``.
        filt_size: binomial filter size 1..7.
        pad_type: padding of the blur: ``reflect``, ``replicate``, ``zeros`` or ``circular``.

    Returns:
        ``nn.Sequential`` with children ``conv`` (stride 1) and ``pool`` (:class:`BlurPool2d`).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})`, the same as ``conv``'s.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from shiftlab.nn import blurred_conv
        >>> conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> layer = blurred_conv(conv, filt_size=3)
        >>> layer
        Sequential(
          (conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (pool): BlurPool2d(8, stride=2, filt_size=3, pad_type='reflect')
        )
        >>> layer(torch.rand(1, 3, 15, 15)).shape == conv(torch.rand(1, 3, 15, 15)).shape
        True
    """
    dense, stride = _stride1_copy(conv)
    pool = BlurPool2d(dense.out_channels, stride=stride, filt_size=filt_size, pad_type=pad_type)
    return _conv_then(dense, pool)


def aps_conv(
    conv: nn.Conv2d, norm: Norm = 2, filt_size: int = 1, *, circular: bool = False
) -> nn.Sequential:
    """Turn a strided convolution into ``conv(stride 1) -> APSPool2d(stride)`` (Chaman 2021).

    The stride-1 convolution is a deep copy of ``conv`` (weights and bias values copied), so
    trained weights are kept; the original module is not modified. With ``circular=True`` its
    ``padding_mode`` becomes ``"circular"`` (needed for exact circular-shift invariance);
    otherwise it is kept. The APS blur, if any, uses circular padding.

    Args:
        conv: a ``nn.Conv2d`` with a square stride ``s >= 2``; its stride-1 output size must be
            divisible by ``s`` (true for the usual "same" paddings on sizes divisible by ``s``).
        norm: APS selection norm: ``1``, ``2`` or ``inf``.
        filt_size: binomial blur size 1..7 before APS (1 means no blur).
        circular: switch the convolution to circular padding.

    Returns:
        ``nn.Sequential`` with children ``conv`` (stride 1) and ``pool`` (:class:`APSPool2d`).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`.
        - Output: :math:`(N, C_{out}, H' / s, W' / s)` with :math:`H' \\times W'` the stride-1
          output size (equal to ``conv``'s output size when ``s`` divides it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from shiftlab.nn import aps_conv
        >>> conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1)
        >>> layer = aps_conv(conv, circular=True)
        >>> layer.conv.padding_mode, layer.conv.stride
        ('circular', (1, 1))
        >>> layer(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """
    dense, stride = _stride1_copy(conv)
    if circular:
        dense.padding_mode = "circular"
    pool = APSPool2d(dense.out_channels, stride=stride, norm=norm, filt_size=filt_size)
    return _conv_then(dense, pool)
