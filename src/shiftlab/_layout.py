"""Memory layout of feature maps, shared by the layers and the measurement."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["is_channels_last"]


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` is a 4-D ``[N, C, H, W]`` tensor stored as ``[N, H, W, C]`` (and not also
    plain contiguous, as a map of one channel or of 1x1 pixels is).

    Example:
        >>> is_channels_last(torch.zeros(2, 3, 4, 5).to(memory_format=torch.channels_last))
        True
        >>> is_channels_last(torch.zeros(2, 1, 4, 5).to(memory_format=torch.channels_last))
        False
    """
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
