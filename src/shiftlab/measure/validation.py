"""Input checks shared by the measurement functions: each failure says what to do."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_finite_output", "check_images", "check_labels", "check_module"]


def check_images(images: object, *, name: str = "images") -> Tensor:
    """Validate a batch of images ``[N, C, H, W]``: floating point, non-empty, finite.

    Returns the tensor unchanged.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, C, H, W], got {type(images).__name__}; convert with torch.as_tensor")
    if images.dim() != 4:
        hint = " (add a batch dim with images.unsqueeze(0))" if images.dim() == 3 else ""
        raise ValueError(f"{name} must be 4-D [N, C, H, W], got shape {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {images.dtype}; use images.float() (and scale to the model's range)")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (N = 0); give at least one image")
    if images.shape[-2] == 0 or images.shape[-1] == 0:
        raise ValueError(f"{name} have zero height or width: {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(dim=1).sum())
        raise ValueError(f"{name} contain NaN or Inf values in {bad} image(s); clean or drop them before measuring")
    return images


def check_labels(labels: object, n: int, *, name: str = "labels") -> Tensor:
    """Validate class labels ``[N]`` (integers) for ``n`` images; returns them as int64."""
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be integer class indices, got {labels.dtype}")
    if labels.shape[0] != n:
        raise ValueError(f"got {labels.shape[0]} {name} for {n} images; give one label per image")
    return labels.long()


def check_finite_output(output: Tensor, what: str = "the model") -> None:
    """Raise ValueError when a model output holds NaN or Inf."""
    if not torch.isfinite(output).all():
        raise ValueError(
            f"{what} produced NaN or Inf outputs; check the weights (e.g. a diverged checkpoint) and the input scaling"
        )


def check_module(model: object) -> None:
    """Raise TypeError unless ``model`` is a ``torch.nn.Module`` (a plain function has no
    layers, modes or parameters to measure or restore)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}; wrap a function in a module "
                        "(class F(nn.Module): def forward(self, x): return f(x))")
