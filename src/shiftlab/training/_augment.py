"""Vectorised random zero-filled translation, the ``augment="translate"`` of training.

Zero-fill convention (``docs/definitions.md``, "Shifts", mode "zeros"): content moves by d = (dy, dx) and
vacated pixels become 0. The per-sample shift itself is :func:`shiftlab.data.canvas.translate`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shiftlab.data.canvas import translate


def random_translate(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by (dy, dx) drawn uniformly from ``[-max_shift, max_shift]^2``, zero fill.

    All randomness comes from ``generator`` (one ``torch.randint`` call of ``B * 2`` draws), so
    the same generator state gives the same shifts.

    Shape:
        - images: ``[B, C, H, W]``
        - output: ``[B, C, H, W]``
    """
    shifts = torch.randint(-max_shift, max_shift + 1, (images.shape[0], 2), generator=generator)
    return translate(images, shifts)
