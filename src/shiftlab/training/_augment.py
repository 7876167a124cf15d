"""Vectorised random zero-filled translation, the ``augment="translate"`` of training.

Zero-fill convention (DESIGN.md section 2, mode "zeros"): content moves by d = (dy, dx) and
vacated pixels become 0, i.e. ``out[..., i, j] = x[..., i - dy, j - dx]`` where the source index
is in range, else 0. Positive ``dy`` moves content down, positive ``dx`` moves it right.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def translate_zeros(images: Tensor, shifts: Tensor) -> Tensor:
    """Shift every image by its own integer (dy, dx) with zero fill, without a per-image loop.

    The batch is zero-padded by ``m = max |shift|`` and each output row/column is gathered from
    the padded batch at index ``i - dy + m`` (resp. ``j - dx + m``): two ``torch.gather`` calls.

    Shape:
        - images: ``[B, C, H, W]``
        - shifts: ``[B, 2]`` integer, columns (dy, dx)
        - output: ``[B, C, H, W]``, same dtype as ``images``

    Example:
        >>> x = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> translate_zeros(x, torch.tensor([[1, 0]]))[0, 0]
        tensor([[0., 0., 0.],
                [0., 1., 2.],
                [3., 4., 5.]])
    """
    batch, channels, height, width = images.shape
    margin = int(shifts.abs().max()) if shifts.numel() else 0
    padded = F.pad(images, (margin, margin, margin, margin))
    rows = torch.arange(height) - shifts[:, :1] + margin  # [B, H]
    cols = torch.arange(width) - shifts[:, 1:] + margin  # [B, W]
    row_index = rows.view(batch, 1, height, 1).expand(batch, channels, height, padded.shape[-1])
    picked_rows = padded.gather(2, row_index)  # [B, C, H, W + 2m]
    col_index = cols.view(batch, 1, 1, width).expand(batch, channels, height, width)
    return picked_rows.gather(3, col_index)


def random_translate(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by (dy, dx) drawn uniformly from ``[-max_shift, max_shift]^2``, zero fill.

    All randomness comes from ``generator`` (one ``torch.randint`` call of ``B * 2`` draws), so
    the same generator state gives the same shifts.

    Shape:
        - images: ``[B, C, H, W]``
        - output: ``[B, C, H, W]``
    """
    shifts = torch.randint(-max_shift, max_shift + 1, (images.shape[0], 2), generator=generator)
    return translate_zeros(images, shifts)
