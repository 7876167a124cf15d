"""Input normalisation as a layer, so that a gallery model takes images in ``[0, 1]``.

Shifts are applied to the model's input. With the normalisation inside the model, a zero-filled
shift (``mode="zeros"``, ``docs/definitions.md``, "Shifts") fills with black, pixel value 0, as
the background of an MNIST digit is; applied to already normalised images it would fill with the
dataset mean instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Normalize"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel: a pointwise map, equivariant to every shift.

    The constants are non-persistent buffers: they follow ``.to()``, ``.double()`` and the device,
    and stay out of the state dict, so a package's weights file loads as it is.

    Args:
        mean: one value per channel (or one for all).
        std: one value per channel (or one for all), each > 0.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, H, W)`

    Example:
        >>> Normalize([0.5], [0.25])(torch.ones(1, 1, 2, 2)).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std need one value per channel each, got {list(mean)} and {list(std)}")
        if min(std) <= 0:
            raise ValueError(f"std must be > 0, got {list(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
