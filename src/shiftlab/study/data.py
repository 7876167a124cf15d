"""The study's data: real images centred on a canvas with room to move (``docs/study.md``, "Data")."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shiftlab.data import Canvas, ImageDataset, load
from shiftlab.study.config import StudyConfig
from shiftlab.zoo import TOTAL_STRIDE

__all__ = ["StudyData", "prepare_data"]


@dataclass
class StudyData:
    """Centred canvases of the train / test / eval images.

    Shape: ``*_x`` ``(N, C, H, W)`` float32, ``*_y`` ``(N,)`` int64. ``eval_x`` is the first
    ``n_eval`` test images, the same for every model (paired measurements).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    canvas: Canvas
    classes: list[str]

    @property
    def max_shift(self) -> int:
        """The largest shift (px) that keeps every object on the canvas."""
        return int(min(self.canvas.max_shift))


def prepare_data(config: StudyConfig) -> StudyData:
    """Load the dataset and place every image at the centre of a canvas with room to move.

    The canvas leaves ``config.fraction`` of the objects' extent free on every side, and at
    least the zoo's total stride S (so shifts by S exist, for the aliasing signature), rounded up
    to a multiple of S. MNIST: 28 -> 48, shifts up to 10 px.
    """
    train_set: ImageDataset = load(config.data, config.data_root, split="train")
    test_set: ImageDataset = load(config.data, config.data_root, split="test")
    if config.n_train:
        train_set = train_set.head(config.n_train)
    if config.n_test:
        test_set = test_set.head(config.n_test)
    if len(test_set) < config.n_eval:
        raise ValueError(f"n_eval={config.n_eval} needs at least that many test images, {config.data} has "
                         f"{len(test_set)} (n_test={config.n_test})")
    canvas = Canvas.for_content(train_set.images, fraction=config.fraction, multiple_of=TOTAL_STRIDE,
                                min_margin=TOTAL_STRIDE)
    eval_set = test_set.head(config.n_eval)
    return StudyData(
        canvas.centred(train_set.images), train_set.labels,
        canvas.centred(test_set.images), test_set.labels,
        canvas.centred(eval_set.images), eval_set.labels,
        canvas, list(train_set.classes),
    )
