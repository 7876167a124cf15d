"""Checkpoints: contents, atomic writes, corrupt files and incompatible runs give clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shiftlab.training.checkpoint as checkpoint_module
from shiftlab.training import CheckpointError, TrainConfig, train
from shiftlab.training.checkpoint import FORMAT, VERSION, checkpoint_path, load_checkpoint

CONFIG = TrainConfig(epochs=1, batch_size=64, seed=3)


@pytest.fixture()
def trained_dir(small_digits, make_model, tmp_path):
    """A directory holding the checkpoint of a finished one-epoch run."""
    images, labels = small_digits
    train(make_model(), images, labels, CONFIG, checkpoint_dir=tmp_path)
    return tmp_path


def test_checkpoint_loads_weights_only_with_everything_needed(trained_dir, small_digits):
    payload = torch.load(checkpoint_path(trained_dir), weights_only=True)
    assert payload["format"] == FORMAT and payload["version"] == VERSION
    assert payload["epoch"] == 1 and payload["config"] == CONFIG.to_dict()
    assert len(payload["history"]) == 1 and payload["optimizer"]["state"]
    assert "1.running_mean" in payload["model"] and set(payload["data"]) == {"train", "val"}


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:100],
        lambda raw: b"",
        lambda raw: b"not a checkpoint at all" * 10,
        lambda raw: bytes(len(raw)),
    ],
    ids=["half", "head", "empty", "garbage", "zeros"],
)
def test_corrupt_checkpoint_is_a_clear_error(trained_dir, small_digits, make_model, damage):
    path = checkpoint_path(trained_dir)
    path.write_bytes(damage(path.read_bytes()))
    images, labels = small_digits
    with pytest.raises(CheckpointError, match=rf"{path}.*truncated or corrupt.*delete it.*--resume"):
        train(make_model(), images, labels, CONFIG, checkpoint_dir=trained_dir, resume=True)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"weight": torch.zeros(2)}, "is not a shiftlab training checkpoint"),
        ([1, 2, 3], "is not a shiftlab training checkpoint"),
        ({"format": FORMAT, "version": VERSION + 1}, "format version 2"),
        ({"format": FORMAT, "version": VERSION, "epoch": 1}, "missing a valid 'model' entry"),
    ],
)
def test_readable_file_that_is_not_a_usable_checkpoint(tmp_path, payload, message):
    path = checkpoint_path(tmp_path)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_corrupt_file_is_left_in_place(trained_dir, small_digits, make_model):
    path = checkpoint_path(trained_dir)
    path.write_bytes(b"garbage")
    images, labels = small_digits
    with pytest.raises(CheckpointError):
        train(make_model(), images, labels, CONFIG, checkpoint_dir=trained_dir, resume=True)
    assert path.read_bytes() == b"garbage"


def test_mismatched_config_names_the_fields(trained_dir, small_digits, make_model):
    images, labels = small_digits
    other = TrainConfig(epochs=2, batch_size=64, seed=3, lr=1e-2, augment="translate", max_shift=1)
    with pytest.raises(ValueError, match=r"augment, lr, max_shift \(augment: checkpoint 'none', given 'translate'"):
        train(make_model(), images, labels, other, checkpoint_dir=trained_dir, resume=True)


def test_epochs_may_grow_but_not_shrink_below_completed(small_digits, make_model, tmp_path):
    images, labels = small_digits
    two = TrainConfig(epochs=2, batch_size=64, seed=3)
    train(make_model(), images, labels, two, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="already has 2 epochs completed, more than the requested epochs=1"):
        train(make_model(), images, labels, CONFIG, checkpoint_dir=tmp_path, resume=True)


def test_different_data_or_model_is_rejected(trained_dir, small_digits, make_model):
    images, labels = small_digits
    with pytest.raises(ValueError, match="the train data differ"):
        train(make_model(), images.flip(0), labels.flip(0), CONFIG, checkpoint_dir=trained_dir, resume=True)
    with pytest.raises(ValueError, match="the val data differ"):
        train(make_model(), images, labels, CONFIG, checkpoint_dir=trained_dir, resume=True,
              val_images=images, val_labels=labels)
    other_model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train(other_model, images, labels, CONFIG, checkpoint_dir=trained_dir, resume=True)


def test_interrupted_write_keeps_the_previous_checkpoint(trained_dir, small_digits, make_model, monkeypatch):
    path = checkpoint_path(trained_dir)
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_interrupt(obj, handle):
        real_save(obj, handle)
        handle.truncate(10)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", save_half_then_interrupt)
    images, labels = small_digits
    with pytest.raises(KeyboardInterrupt):
        train(make_model(), images, labels, CONFIG, checkpoint_dir=trained_dir)
    assert path.read_bytes() == before
    assert [p.name for p in trained_dir.iterdir()] == ["checkpoint.pt"]
    assert load_checkpoint(path).epoch == 1


def test_a_checkpoint_written_before_schedules_resumes_as_constant(trained_dir, small_digits, make_model):
    images, labels = small_digits
    path = checkpoint_path(trained_dir)
    old = load_checkpoint(path)
    legacy = {k: v for k, v in old.config.items() if k not in ("schedule", "stop_at_target")}
    checkpoint_module.save_checkpoint(path, checkpoint_module.Checkpoint(
        old.epoch, old.model, old.optimizer, old.history, legacy, old.data, old.threads))
    grown = TrainConfig(**{**CONFIG.to_dict(), "epochs": 2})
    assert train(make_model(), images, labels, grown, checkpoint_dir=trained_dir, resume=True).resumed_from == 1
    cosine = TrainConfig(**{**CONFIG.to_dict(), "epochs": 2, "schedule": "cosine"})
    with pytest.raises(CheckpointError, match=r"schedule \(schedule: checkpoint 'constant', given 'cosine'"):
        train(make_model(), images, labels, cosine, checkpoint_dir=trained_dir, resume=True)
