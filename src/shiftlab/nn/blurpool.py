"""Anti-aliased downsampling: binomial blur followed by subsampling (BlurPool).

Follows Zhang, *Making Convolutional Networks Shift-Invariant Again* (ICML 2019): a strided
layer is equivariant only to shifts that are multiples of its stride (``docs/study.md``, "Claims", C2);
low-pass filtering before subsampling reduces the aliasing that breaks equivariance to the
other ("unaligned") shifts. The definition matches the paper's reference implementation:
a normalised binomial filter of size ``filt_size``, padding ``(filt_size - 1) // 2`` on the
left/top and ``ceil((filt_size - 1) / 2)`` on the right/bottom, a depthwise convolution with
the given stride, and plain subsampling ``x[..., ::stride, ::stride]`` when ``filt_size == 1``.
The output size is ``ceil(H / stride) x ceil(W / stride)`` for every ``filt_size``.

With ``pad_type="circular"`` and ``H, W`` divisible by ``stride`` the layer is exactly
equivariant to circular shifts that are multiples of ``stride`` (``docs/definitions.md``, "Equivariance metrics",
*aligned error* zero).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .circular_pad import circular_pad2d

__all__ = ["PAD_TYPES", "BlurPool2d", "binomial_kernel2d", "blur_pool2d"]

#: Supported ``pad_type`` values and the :func:`torch.nn.functional.pad` mode each maps to.
PAD_TYPES: dict[str, str] = {
    "reflect": "reflect",
    "replicate": "replicate",
    "zeros": "constant",
    "circular": "circular",
}
_MAX_FILT_SIZE = 7


def _check_int(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def _check_pad_type(pad_type: str) -> str:
    if pad_type not in PAD_TYPES:
        raise ValueError(f"unknown pad_type {pad_type!r}; expected one of {sorted(PAD_TYPES)}")
    return pad_type


def _check_input(x: object, channels: int | None = None) -> Tensor:
    """Raise unless ``x`` is a 4-D tensor ``[N, C, H, W]`` (with ``C == channels`` if given)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"expected a 4-D input [N, C, H, W], got shape {tuple(x.shape)}")
    # under torch.jit.trace (the legacy ONNX exporter) sizes are tensors; the exported graph fixes C anyway
    if channels is not None and not torch.jit.is_tracing() and x.shape[1] != channels:
        raise ValueError(
            f"input has {x.shape[1]} channels but the layer was built for channels={channels}"
        )
    return x


def binomial_kernel2d(
    filt_size: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Normalised 2-D binomial low-pass filter (Zhang 2019).

    The outer product of row ``filt_size - 1`` of Pascal's triangle with itself, divided by its
    sum, so the filter sums to one (the division is by a power of two, hence exact).

    Args:
        filt_size: filter side length, 1..7 (1 is the identity, 2 a box, 3 ``[1, 2, 1]``, ...).
        dtype: dtype of the result (default: torch's default dtype).
        device: device of the result.

    Shape:
        - Output: :math:`(filt\\_size, filt\\_size)`.

    Example:
        >>> from shiftlab.nn import binomial_kernel2d
        >>> binomial_kernel2d(3) * 16
        tensor([[1., 2., 1.],
                [2., 4., 2.],
                [1., 2., 1.]])
    """
    _check_int(filt_size, "filt_size", 1, _MAX_FILT_SIZE)
    row = torch.tensor(
        [math.comb(filt_size - 1, k) for k in range(filt_size)], dtype=dtype, device=device
    )
    kernel = torch.outer(row, row)
    return kernel / kernel.sum()


def _blur_pool(x: Tensor, filt: Tensor, k: int, stride: int, pad_type: str) -> Tensor:
    """Pad, then depthwise-convolve ``x`` with ``filt`` ``[C, 1, k, k]`` at ``stride``.

    ``k`` is passed as an int, not read from ``filt.shape``: a traced size is a tensor, and the pad
    computed from it would be a traced value (TracerWarnings when the model is exported)."""
    if k == 1:
        return x[..., ::stride, ::stride]
    before, after = (k - 1) // 2, k // 2  # k // 2 == ceil((k - 1) / 2)
    pad = (before, after, before, after)
    padded = circular_pad2d(x, pad) if pad_type == "circular" else F.pad(x, pad, mode=PAD_TYPES[pad_type])
    return F.conv2d(padded, filt, stride=stride, groups=x.shape[1])


def blur_pool2d(
    x: Tensor, stride: int = 2, filt_size: int = 4, pad_type: str = "reflect"
) -> Tensor:
    """Blur with a binomial filter, then subsample (functional BlurPool, Zhang 2019).

    Args:
        x: input images.
        stride: subsampling factor (>= 1; 1 only blurs).
        filt_size: binomial filter size, 1..7; 1 means plain subsampling
            ``x[..., ::stride, ::stride]``.
        pad_type: border handling, one of ``reflect``, ``replicate``, ``zeros``, ``circular``.
            Padding is ``(filt_size - 1) // 2`` left/top and ``ceil((filt_size - 1) / 2)``
            right/bottom.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, \\lceil H / stride \\rceil, \\lceil W / stride \\rceil)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import blur_pool2d
        >>> x = torch.rand(2, 3, 9, 8)
        >>> blur_pool2d(x, stride=2, filt_size=4).shape
        torch.Size([2, 3, 5, 4])
    """
    _check_input(x)
    _check_int(stride, "stride", 1)
    _check_pad_type(pad_type)
    filt = binomial_kernel2d(filt_size, dtype=x.dtype, device=x.device)
    return _blur_pool(x, filt.expand(x.shape[1], 1, filt_size, filt_size), filt_size, stride, pad_type)


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling layer: binomial blur then subsampling (Zhang 2019).

    Module form of :func:`blur_pool2d`, a drop-in for the subsampling step of a strided layer
    (see :class:`shiftlab.nn.MaxBlurPool2d` and :func:`shiftlab.nn.blurred_conv`). The filter
    is held in the non-persistent buffer ``filt`` of shape ``[channels, 1, k, k]``: it follows
    ``.to()`` / ``.double()`` but is not part of ``state_dict()`` (it is a constant fixed by
    ``filt_size``, so state dicts hold only learned weights).

    Args:
        channels: number of input channels ``C`` (the filter is applied depthwise).
        stride: subsampling factor (>= 1).
        filt_size: binomial filter size, 1..7; 1 means plain subsampling.
        pad_type: one of ``reflect``, ``replicate``, ``zeros``, ``circular``.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, \\lceil H / stride \\rceil, \\lceil W / stride \\rceil)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import BlurPool2d
        >>> pool = BlurPool2d(3, stride=2, filt_size=4, pad_type="circular")
        >>> pool(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 4, 4])
    """

    filt: Tensor

    def __init__(
        self, channels: int, stride: int = 2, filt_size: int = 4, pad_type: str = "reflect"
    ) -> None:
        super().__init__()
        self.channels = _check_int(channels, "channels", 1)
        self.stride = _check_int(stride, "stride", 1)
        self.filt_size = filt_size
        self.pad_type = _check_pad_type(pad_type)
        filt = binomial_kernel2d(filt_size)
        self.register_buffer(
            "filt", filt.expand(channels, 1, filt_size, filt_size).clone(), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.channels)
        return _blur_pool(x, self.filt, self.filt_size, self.stride, self.pad_type)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, stride={self.stride}, filt_size={self.filt_size}, "
            f"pad_type={self.pad_type!r}"
        )
