"""Top-1 accuracy of a classifier, in eval mode, without touching the caller's train/eval flags."""

from __future__ import annotations

import torch  # noqa: F401  (the doctest uses it)
from torch import Tensor, nn

from shiftlab.measure.runner import measuring, model_device

from ._validate import check_dataset


def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Return the fraction of ``images`` whose arg-max logit equals the label.

    Runs in eval mode under ``torch.inference_mode()`` on the model's device (batches are moved
    there) and restores the model's previous train/eval mode (per submodule) afterwards.

    Shape:
        - images: ``[N, C, H, W]`` floating point
        - labels: ``[N]`` ``torch.int64``
        - model output: ``[B, K]`` logits

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
            predicted = model(batch_images.to(device)).argmax(dim=1).cpu()
            correct += int((predicted == batch_labels).sum())
    return correct / len(labels)
