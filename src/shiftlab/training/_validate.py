"""Input checks shared by :func:`train` and :func:`evaluate`, with messages that say what to fix."""

from __future__ import annotations

import torch
from torch import Tensor


def check_dataset(images: object, labels: object, name: str = "images") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images``/``labels`` form a usable dataset.

    Shape:
        - images: ``[N, C, H, W]`` floating point, finite, ``N >= 1``
        - labels: ``[N]`` ``torch.int64``, non-negative class indices
    """
    label_name = name.replace("images", "labels")
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not isinstance(labels, Tensor):
        raise TypeError(f"{label_name} must be a torch.Tensor, got {type(labels).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{name} must be 4-D [N, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {images.dtype}")
    if labels.dtype != torch.int64:
        raise TypeError(f"{label_name} must be torch.int64 class indices, got {labels.dtype}")
    if labels.dim() != 1:
        raise ValueError(f"{label_name} must be 1-D [N], got shape {tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{name} and {label_name} differ in length: {images.shape[0]} != {labels.shape[0]}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    if (labels < 0).any():
        raise ValueError(f"{label_name} must be non-negative class indices, got min {int(labels.min())}")


def check_validation_pair(val_images: Tensor | None, val_labels: Tensor | None) -> None:
    """Raise ``ValueError`` if exactly one of the validation tensors is given, else check them."""
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if val_images is not None:
        check_dataset(val_images, val_labels, name="val_images")
