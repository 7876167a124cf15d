"""Turn an 8-bit image array (``skimage.data``, PIL, OpenCV after BGR -> RGB) into a gallery
model's input: RGB in ``[0, 1]``, ``[1, 3, H, W]``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["rgb_tensor"]


def rgb_tensor(image: np.ndarray) -> Tensor:
    """An 8-bit image as one RGB batch in ``[0, 1]`` (pixel values / 255).

    Args:
        image: ``uint8`` pixels, ``[H, W]`` (grey, copied to the three channels), ``[H, W, 3]``
            (RGB) or ``[H, W, 4]`` (RGBA; alpha dropped).

    Shape:
        - output: :math:`(1, 3, H, W)` float32

    Raises:
        TypeError: not a ``uint8`` array.
        ValueError: another shape.

    Example:
        >>> x = rgb_tensor(np.full((4, 6), 255, dtype=np.uint8))
        >>> x.shape, float(x.max())
        (torch.Size([1, 3, 4, 6]), 1.0)
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"image must hold uint8 pixels 0..255, got {array.dtype}; "
                        "convert with skimage.util.img_as_ubyte")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or 0 in array.shape[:2]:
        raise ValueError(f"image must be [H, W], [H, W, 3] or [H, W, 4], got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array[:, :, :3])).permute(2, 0, 1)[None].float() / 255
