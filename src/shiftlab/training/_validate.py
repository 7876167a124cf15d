"""Input checks shared by :func:`train` and :func:`evaluate`, with messages that say what to fix."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from shiftlab.measure.validation import check_images, check_labels


def check_dataset(images: object, labels: object, name: str = "images") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images``/``labels`` form a usable dataset: the
    measuring functions' checks (:func:`shiftlab.measure.validation.check_images`,
    :func:`~shiftlab.measure.validation.check_labels`), plus labels that are already ``int64``
    and non-negative (training indexes with them).

    Shape:
        - images: ``[N, C, H, W]`` floating point, finite, ``N >= 1``
        - labels: ``[N]`` ``torch.int64``, non-negative class indices
    """
    label_name = name.replace("images", "labels")
    check_images(images, name=name)
    if not isinstance(labels, Tensor):
        raise TypeError(f"{label_name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise TypeError(f"{label_name} must be torch.int64 class indices, got {labels.dtype}")
    check_labels(labels, cast(Tensor, images).shape[0], name=label_name)  # check_images raised unless a Tensor
    if (labels < 0).any():
        raise ValueError(f"{label_name} must be non-negative class indices, got min {int(labels.min())}")


def check_validation_pair(val_images: Tensor | None, val_labels: Tensor | None) -> None:
    """Raise ``ValueError`` if exactly one of the validation tensors is given, else check them."""
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if val_images is not None:
        check_dataset(val_images, val_labels, name="val_images")
