"""train()/evaluate() with per-pixel labels (masks ``[N, H, W]``) and a small U-Net: learning, pixel
accuracy, masks moving with their images, resume, checkpoint fingerprints and input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from training_helpers import numbers, state_equal

from shiftlab.data.canvas import random_offsets, random_translate, translate
from shiftlab.training import CheckpointError, TrainConfig, evaluate, train
from shiftlab.training.augment import translate_batch
from shiftlab.training.checkpoint import fingerprint
from shiftlab.zoo import UNet

CONFIG = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=3, augment="translate", max_shift=2)


def toy_scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 16x16 scenes, each one 8x8 square of class 1 or 2 at a random place on background 0;
    the square's ink is 1 in channel ``class - 1`` (so a pixel's class is learnable from the image).

    Shape:
        - output: images ``[n, 2, 16, 16]`` float64, masks ``[n, 16, 16]`` int64
    """
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 16, 16, dtype=torch.int64)
    for k in range(n):
        top, left = torch.randint(0, 9, (2,), generator=generator).tolist()
        masks[k, top:top + 8, left:left + 8] = int(torch.randint(1, 3, (1,), generator=generator))
    return nn.functional.one_hot(masks, 3)[..., 1:].permute(0, 3, 1, 2).double(), masks


def unet() -> nn.Module:
    """The same small float64 U-Net (BatchNorm, 3 classes, 16x16 inputs) on every call."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return UNet("maxpool", "transposed", num_classes=3, in_channels=2, width=4, levels=2).double()


def test_translate_moves_integer_masks_exactly():
    """Class ids beyond float64's integers (2**53 + 1) survive: the shift copies, never rounds."""
    masks = torch.arange(3 * 5 * 6, dtype=torch.int64).reshape(3, 1, 5, 6) + 2**53 + 1
    offsets = torch.tensor([[1, -2], [0, 0], [-4, 5]])
    moved = translate(masks, offsets)
    expected = torch.zeros_like(masks)
    for k, (dy, dx) in enumerate(offsets.tolist()):
        for i in range(5):
            for j in range(6):
                if 0 <= i - dy < 5 and 0 <= j - dx < 6:
                    expected[k, 0, i, j] = masks[k, 0, i - dy, j - dx]
    assert moved.dtype == torch.int64 and torch.equal(moved, expected)


def test_translate_batch_moves_masks_with_their_images():
    images, masks = toy_scenes(16, seed=0)
    moved, moved_masks = translate_batch(images, masks, 3, torch.Generator().manual_seed(5))
    offsets = random_offsets(16, 3, generator=torch.Generator().manual_seed(5))
    assert (offsets != 0).any(dim=1).sum() >= 12  # most samples really move
    assert torch.equal(moved, translate(images, offsets))
    for k in range(16):
        assert torch.equal(moved_masks[k], translate(masks[k][None, None], offsets[k][None])[0, 0])
    assert moved_masks.dtype == torch.int64 and not torch.equal(moved_masks, masks)
    ink_class = moved[:, 0] + 2 * moved[:, 1]  # the class each pixel's ink says, 0 without ink
    assert torch.equal(moved_masks, ink_class.long())  # every object pixel still sits on its ink


def test_translate_batch_draws_what_class_labels_always_drew():
    images, labels = torch.randn(50, 1, 9, 9), torch.arange(50)
    drawing, reference = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    moved, same = translate_batch(images, labels, 3, drawing)
    assert same is labels
    assert torch.equal(moved, random_translate(images, 3, reference))
    assert torch.equal(drawing.get_state(), reference.get_state())  # no extra draws


def test_dense_training_learns_toy_scenes():
    images, masks = toy_scenes(64, seed=0)
    held_images, held_masks = toy_scenes(32, seed=1)
    model = unet()
    config = TrainConfig(epochs=4, batch_size=8, lr=1e-2, augment="translate", max_shift=2)
    result = train(model, images, masks, config, val_images=held_images, val_labels=held_masks)
    accuracy = evaluate(model, held_images, held_masks)
    assert float((held_masks == 0).double().mean()) == 0.75  # "all background" scores 0.75
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 2
    assert accuracy > 0.95
    assert result.history[-1]["val_acc"] == accuracy


class Scores(nn.Module):
    """Returns its input as per-pixel logits; one parameter (with zero gradient) for the optimiser."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.unused


def test_pixel_accuracy_is_the_share_of_correct_pixels():
    predicted = torch.tensor([[[0, 1, 2], [2, 2, 0]], [[1, 1, 1], [0, 0, 0]]])
    masks = torch.tensor([[[0, 1, 2], [2, 2, 0]], [[1, 0, 0], [0, 2, 2]]])  # 6 + 2 of 12 pixels right
    logits = nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).double()
    assert evaluate(Scores(), logits, masks, batch_size=1) == 8 / 12
    result = train(Scores(), logits, masks, TrainConfig(epochs=1, batch_size=1), val_images=logits, val_labels=masks)
    assert result.history[0]["train_acc"] == result.history[0]["val_acc"] == 8 / 12


def test_dense_resume_after_epoch_one_matches_uninterrupted_run(tmp_path):
    images, masks = toy_scenes(24, seed=2)
    val = toy_scenes(8, seed=3)
    reference = unet()
    expected = train(reference, images, masks, CONFIG, val_images=val[0], val_labels=val[1])
    first = TrainConfig(**{**CONFIG.to_dict(), "epochs": 1})
    train(unet(), images, masks, first, checkpoint_dir=tmp_path, val_images=val[0], val_labels=val[1])
    resumed_model = unet()
    resumed = train(resumed_model, images, masks, CONFIG, checkpoint_dir=tmp_path, resume=True,
                    val_images=val[0], val_labels=val[1])
    assert resumed.resumed_from == 1 and state_equal(resumed_model, reference)
    assert numbers(resumed.history) == numbers(expected.history)


def test_checkpoint_fingerprint_covers_every_mask_pixel(tmp_path):
    images, masks = toy_scenes(8, seed=4)
    changed = masks.clone()
    changed[5, 15, 15] = 2
    assert fingerprint(images, masks) != fingerprint(images, changed)
    assert fingerprint(images, masks) != fingerprint(images, masks.reshape(8, 256, 1))  # the shape counts too
    first = TrainConfig(**{**CONFIG.to_dict(), "epochs": 1})
    train(unet(), images, masks, first, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="the train data differ"):
        train(unet(), images, changed, CONFIG, checkpoint_dir=tmp_path, resume=True)


IMAGES = torch.zeros(4, 2, 16, 16, dtype=torch.float64)


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (torch.zeros(4, 16, 8, dtype=torch.long), ValueError, "labels are 16x8 masks but the images are 16x16"),
        (torch.zeros(3, 16, 16, dtype=torch.long), ValueError, "got 3 masks in labels for 4 images"),
        (torch.zeros(4, 16, 16, dtype=torch.int32), TypeError, "must be torch.int64"),
        (torch.zeros(4, 16, 16), TypeError, "must be torch.int64"),
        (torch.zeros(4, 16, 16, dtype=torch.long).index_fill(2, torch.tensor([3]), -1), ValueError, "non-negative"),
        (torch.zeros(4, 16, dtype=torch.long), ValueError, r"1-D \[N\] class indices or 3-D \[N, H, W\]"),
    ],
)
def test_bad_masks_raise(labels, error, message):
    with pytest.raises(error, match=message):
        train(unet(), IMAGES, labels, TrainConfig(epochs=1))
    with pytest.raises(error, match=message):
        evaluate(unet(), IMAGES, labels)


def test_logits_that_do_not_fit_the_labels_raise():
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(512, 3)).double()
    masks, labels = torch.zeros(4, 16, 16, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    for model, targets, shapes in [(classifier, masks, r"\(4, 3\).*\(4, 16, 16\)"),
                                   (unet(), labels, r"\(4, 3, 16, 16\).*\(4,\)")]:
        with pytest.raises(ValueError, match=f"logits have shape {shapes}.*per-pixel logits"):
            train(model, IMAGES, targets, TrainConfig(epochs=1))
        with pytest.raises(ValueError, match=f"logits have shape {shapes}"):
            evaluate(model, IMAGES, targets)


def test_validation_labels_must_be_the_kind_of_the_training_labels():
    masks, labels = torch.zeros(4, 16, 16, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"val_labels have shape \(4,\) but labels \(4, 16, 16\)"):
        train(unet(), IMAGES, masks, TrainConfig(epochs=1), val_images=IMAGES, val_labels=labels)
    with pytest.raises(ValueError, match="val_labels are 8x8 masks but the images are 16x16"):
        train(unet(), IMAGES, masks, TrainConfig(epochs=1), val_images=IMAGES, val_labels=masks[:, :8, :8])
