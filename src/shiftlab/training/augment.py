"""The ``augment="translate"`` step of a training batch: images, and masks with them."""

from __future__ import annotations

import torch
from torch import Tensor

from shiftlab.data.canvas import random_offsets, translate


def translate_batch(images: Tensor, labels: Tensor, max_shift: int,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Move each image by its own random offset in ``[-max_shift, max_shift]^2``, zero-filled, and
    each mask by the same offset.

    The offsets are one draw of :func:`shiftlab.data.canvas.random_offsets` from ``generator``
    (the draw of :func:`~shiftlab.data.canvas.random_translate`, so class-label batches are
    augmented exactly as before masks were supported). Class labels come back unchanged; masks
    move with their images, the vacated pixels becoming class 0 (background). Integer masks are
    moved by indexing, so class indices are copied exactly.

    Shape:
        - images: ``[B, C, H, W]``
        - labels: ``[B]`` class labels or ``[B, H, W]`` masks
        - output: ``([B, C, H, W], labels' shape)``

    Example:
        >>> masks = torch.zeros(1, 3, 3, dtype=torch.long)
        >>> masks[0, 1, 1] = 7
        >>> moved, moved_masks = translate_batch(masks[:, None].float(), masks, 1, torch.Generator().manual_seed(0))
        >>> torch.equal(moved[:, 0].long(), moved_masks)
        True
    """
    offsets = random_offsets(images.shape[0], max_shift, generator=generator)
    moved = translate(images, offsets)
    if labels.dim() == 1:
        return moved, labels
    return moved, translate(labels[:, None], offsets)[:, 0]
