"""Top-1 accuracy of a classifier (per image) or segmenter (per pixel), in eval mode, without
touching the caller's train/eval flags."""

from __future__ import annotations

import torch  # noqa: F401  (the doctest uses it)
from torch import Tensor, nn

from shiftlab.measure.runner import measuring, model_device

from ._validate import check_dataset, check_logits


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Return the fraction of ``images`` whose arg-max logit equals the label or, for masks, the
    fraction of pixels whose arg-max logit equals the pixel's class (correct pixels / ``(N * H * W)``).

    Runs in eval mode under ``torch.inference_mode()`` on the model's device (batches are moved
    there) and restores the model's previous train/eval mode (per submodule) afterwards.

    Shape:
        - images: ``[N, C, H, W]`` floating point
        - labels: ``[N]`` ``torch.int64`` class labels, or ``[N, H, W]`` ``torch.int64`` masks
        - model output: ``[B, K]`` logits, or ``[B, K, H, W]`` per-pixel logits for masks

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> 0.0 <= evaluate(model, torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)) <= 1.0
        True
    """
    check_dataset(images, labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    correct = 0
    device = model_device(model)
    with measuring(model, warn=False):  # eval mode, no autograd, every module's mode restored after
        for batch_images, batch_labels in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            logits = model(batch_images.to(device))
            check_logits(logits, batch_labels)
            correct += int((logits.argmax(dim=1).cpu() == batch_labels).sum())
    return correct / labels.numel()
