"""Input checks shared by :func:`train` and :func:`evaluate`, with messages that say what to fix."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from shiftlab.measure.validation import check_images, check_labels


def check_dataset(images: object, labels: object, name: str = "images") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images``/``labels`` form a usable dataset: the
    measuring functions' image checks (:func:`shiftlab.measure.validation.check_images`), and
    ``int64``, non-negative labels (training indexes with them) that are either one class per
    image (:func:`~shiftlab.measure.validation.check_labels`) or one class per pixel (masks with
    the images' height and width).

    Shape:
        - images: ``[N, C, H, W]`` floating point, finite, ``N >= 1``
        - labels: ``[N]`` or ``[N, H, W]`` ``torch.int64``, non-negative class indices
    """
    label_name = name.replace("images", "labels")
    check_images(images, name=name)
    shape = cast(Tensor, images).shape  # check_images raised unless a Tensor
    if not isinstance(labels, Tensor):
        raise TypeError(f"{label_name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise TypeError(f"{label_name} must be torch.int64 class indices, got {labels.dtype}")
    if labels.dim() == 3:
        _check_masks(labels, shape, label_name)
    elif labels.dim() == 1:
        check_labels(labels, shape[0], name=label_name)
    else:
        raise ValueError(f"{label_name} must be 1-D [N] class indices or 3-D [N, H, W] per-pixel class indices "
                         f"(masks), got shape {tuple(labels.shape)}")
    if (labels < 0).any():
        raise ValueError(f"{label_name} must be non-negative class indices, got min {int(labels.min())}")


def _check_masks(masks: Tensor, image_shape: torch.Size, name: str) -> None:
    """Raise ``ValueError`` unless there is one mask per image, each of the images' height and width.

    Shape:
        - masks: ``[N', H', W']``; image_shape: ``(N, C, H, W)``
    """
    n, _, height, width = image_shape
    if masks.shape[0] != n:
        raise ValueError(f"got {masks.shape[0]} masks in {name} for {n} images; give one mask per image")
    if masks.shape[1:] != (height, width):
        raise ValueError(f"{name} are {masks.shape[1]}x{masks.shape[2]} masks but the images are {height}x{width}; "
                         "give one class per image pixel ([N, H, W] with the images' H and W)")


def check_validation_pair(val_images: Tensor | None, val_labels: Tensor | None, labels: Tensor) -> None:
    """Raise ``ValueError`` if exactly one of the validation tensors is given, else check them and
    that they are the same kind as the training ``labels`` (class labels or masks).

    Shape:
        - val_images: ``[M, C, H, W]``; val_labels: ``[M]`` or ``[M, H, W]``; labels: ``[N]`` or ``[N, H, W]``
    """
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if val_images is None or val_labels is None:
        return
    check_dataset(val_images, val_labels, name="val_images")
    if val_labels.dim() != labels.dim():
        raise ValueError(f"val_labels have shape {tuple(val_labels.shape)} but labels {tuple(labels.shape)}: "
                         "give class labels [M] with class labels [N], masks [M, H, W] with masks [N, H, W]")


def check_logits(logits: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless a model's ``logits`` fit ``labels``: one row of class scores per
    label, i.e. per image for class labels and per pixel for masks.

    Shape:
        - logits: ``[B, K]`` for labels ``[B]``; ``[B, K, H, W]`` for labels ``[B, H, W]``
    """
    if logits.dim() != labels.dim() + 1 or logits.shape[:1] + logits.shape[2:] != labels.shape:
        raise ValueError(f"the model's logits have shape {tuple(logits.shape)}, which does not fit labels of "
                         f"shape {tuple(labels.shape)}: class labels [B] need logits [B, K], masks [B, H, W] "
                         "need per-pixel logits [B, K, H, W]")
