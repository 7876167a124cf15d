"""Learned depthwise downsampling with the blur's support: the control that separates a fixed
low-pass from a learned one (``docs/study.md``, "Controls").

:class:`LearnedPool2d` is a depthwise ``k x k`` convolution of stride ``s`` padded exactly as
:class:`~shiftlab.nn.BlurPool2d` pads (``(k - 1) // 2`` left/top, ``k // 2`` right/bottom), so it
has the same support, receptive field, output size and multiply-adds as a BlurPool of
``filt_size = k``; only its filter is learned instead of fixed. Initialised at the binomial filter
(``init="binomial"``) it *is* that BlurPool until training moves it (tested); initialised at random
(``init="random"``, PyTorch's default ``Conv2d`` initialisation) it starts as no low-pass at all.
:func:`alias_fraction` measures how much of a filter's energy lies above the new Nyquist
frequency, so a report can say whether training kept, found or lost the low-pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blurpool import PAD_TYPES, _check_input, _check_int, _check_pad_type, binomial_kernel2d
from .circular_pad import circular_pad2d

__all__ = ["INITS", "LearnedPool2d", "alias_fraction"]

#: Initialisations of :class:`LearnedPool2d`.
INITS = ("random", "binomial")


class LearnedPool2d(nn.Module):
    """A learned depthwise ``k x k`` stride-``s`` filter with BlurPool's padding and output size.

    Args:
        channels: channels ``C`` (one filter per channel, no bias).
        stride: subsampling factor (>= 1).
        filt_size: filter side ``k``, 2..7 (the blur's support at the same ``k``).
        pad_type: one of ``reflect``, ``replicate``, ``zeros``, ``circular`` (as BlurPool).
        init: ``"random"`` (``nn.Conv2d``'s default, Kaiming-uniform) or ``"binomial"`` (every
            channel's filter starts at :func:`~shiftlab.nn.binomial_kernel2d`).

    The learned filter is the parameter ``weight`` of shape ``[C, 1, k, k]``.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, \\lceil H / stride \\rceil, \\lceil W / stride \\rceil)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import BlurPool2d, LearnedPool2d
        >>> x = torch.rand(2, 3, 8, 8)
        >>> pool = LearnedPool2d(3, stride=2, filt_size=4, init="binomial")
        >>> pool(x).shape, torch.allclose(pool(x), BlurPool2d(3, 2, 4)(x))
        (torch.Size([2, 3, 4, 4]), True)
    """

    def __init__(self, channels: int, stride: int = 2, filt_size: int = 4, pad_type: str = "reflect",
                 init: str = "random") -> None:
        super().__init__()
        self.channels = _check_int(channels, "channels", 1)
        self.stride = _check_int(stride, "stride", 1)
        self.filt_size = _check_int(filt_size, "filt_size", 2, 7)
        self.pad_type = _check_pad_type(pad_type)
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        self.weight = nn.Parameter(torch.empty(channels, 1, filt_size, filt_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set ``weight`` to its initialisation (``init``)."""
        with torch.no_grad():
            if self.init == "binomial":
                self.weight.copy_(binomial_kernel2d(self.filt_size).expand_as(self.weight))
            else:  # nn.Conv2d.reset_parameters
                nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.channels)
        k = self.filt_size
        pad = ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2)
        padded = circular_pad2d(x, pad) if self.pad_type == "circular" else F.pad(x, pad, mode=PAD_TYPES[self.pad_type])
        return F.conv2d(padded, self.weight, stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return (f"{self.channels}, stride={self.stride}, filt_size={self.filt_size}, "
                f"pad_type={self.pad_type!r}, init={self.init!r}")


def alias_fraction(filters: Tensor, stride: int = 2, *, grid: int = 64) -> Tensor:
    """Share of each filter's energy above the Nyquist frequency of the subsampled map.

    For a filter ``h`` with frequency response ``H(w)`` (its DFT on a ``grid x grid`` grid,
    zero-padded), the share is ``sum |H(w)|^2`` over the frequencies with
    ``max(|w_y|, |w_x|) > pi / stride`` (grid points on the cut count half) divided by
    ``sum |H(w)|^2`` over all frequencies: 0 for an ideal low-pass, ``1 - 1 / stride**2`` for a
    filter with a flat spectrum (a delta) and about that for random filters; the
    energy that subsampling by ``stride`` folds back onto the kept band (aliasing).

    Args:
        filters: ``[..., k, k]`` (e.g. a depthwise weight ``[C, 1, k, k]``).
        stride: the subsampling factor that follows the filter.
        grid: DFT size (>= k).

    Returns:
        ``[...]``: one share per filter, in ``[0, 1]`` (NaN for an all-zero filter).

    Example:
        >>> from shiftlab.nn import binomial_kernel2d
        >>> round(float(alias_fraction(binomial_kernel2d(4))), 4)
        0.0658
        >>> round(float(alias_fraction(torch.tensor([[0., 0.], [0., 1.]]))), 4)  # a delta: flat spectrum
        0.75
    """
    _check_int(stride, "stride", 1)
    k = filters.shape[-1]
    if filters.dim() < 2 or filters.shape[-2] != k or grid < k:
        raise ValueError(f"filters must be [..., k, k] with k <= grid={grid}, got shape {tuple(filters.shape)}")
    power = torch.fft.fft2(filters.double(), s=(grid, grid)).abs() ** 2
    freq = torch.fft.fftfreq(grid, dtype=torch.float64).abs()  # cycles per sample, Nyquist 0.5
    cut = 0.5 / stride
    # Per axis: 1 inside the kept band, 1/2 on its edge (the DFT grid samples the cut itself), 0 above.
    kept = (freq < cut).double() + 0.5 * torch.isclose(freq, torch.tensor(cut, dtype=torch.float64)).double()
    low = kept[:, None] * kept[None, :]
    leaked: Tensor = 1 - (power * low).sum(dim=(-2, -1)) / power.sum(dim=(-2, -1))
    return leaked
