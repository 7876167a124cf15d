"""Run a model on many shifted copies of a batch, in bounded chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab.measure.shifts import crop_many, shift_many
from shiftlab.measure.shiftsets import ShiftSet

__all__ = ["ProgressFn", "ShiftedChunk", "count_chunks", "shifted_chunks", "transform"]


@dataclass
class ShiftedChunk:
    """Images ``[s * n, C, h, w]`` = shifts ``shift_index`` (``[s]``) of images ``image_index`` (``[n]``).

    Row ``k * n + i`` holds shift ``shift_index[k]`` of image ``image_index[i]``.
    """

    batch: Tensor
    image_index: Tensor
    shift_index: Tensor


def transform(x: Tensor, offsets: Tensor, mode: str, crop_size: tuple[int, int] | None) -> Tensor:
    """Shift (or crop, when ``mode == "crop"``) ``x [n, C, H, W]`` by ``offsets [s, 2]`` -> ``[s, n, C, h, w]``."""
    if mode == "crop":
        if crop_size is None:
            raise ValueError("mode='crop' needs crop_size=(h, w), the window the model sees")
        return crop_many(x, crop_size, offsets)
    return shift_many(x, offsets, mode)


def shifted_chunks(
    images: Tensor,
    shift_set: ShiftSet,
    mode: str,
    batch_size: int,
    *,
    crop_size: tuple[int, int] | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Iterator[ShiftedChunk]:
    """Yield chunks of at most ``max(batch_size, n_shift)`` shifted images covering images x shifts.

    Shape:
        - images: ``(N, C, H, W)``
        - each chunk's batch: ``(s * n, C, h, w)``
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_img = min(images.shape[0], batch_size)
    n_shift = max(1, batch_size // n_img)
    for i0 in range(0, images.shape[0], n_img):
        x = images[i0 : i0 + n_img].to(device=device, dtype=dtype)
        for s0 in range(0, len(shift_set), n_shift):
            offsets = shift_set.offsets[s0 : s0 + n_shift]
            shifted = transform(x, offsets, mode, crop_size)
            yield ShiftedChunk(
                batch=shifted.reshape(-1, *shifted.shape[2:]),
                image_index=torch.arange(i0, i0 + x.shape[0]),
                shift_index=torch.arange(s0, s0 + offsets.shape[0]),
            )


def count_chunks(n_images: int, n_shifts: int, batch_size: int) -> int:
    """How many chunks :func:`shifted_chunks` yields (for progress bars)."""
    n_img = min(n_images, batch_size)
    n_shift = max(1, batch_size // n_img)
    return -(-n_images // n_img) * -(-n_shifts // n_shift)


ProgressFn = Callable[[int, int], None]
