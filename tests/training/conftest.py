"""Fixtures for the training tests: real digits (sklearn ``load_digits``) and identical tiny CNNs."""

from __future__ import annotations

import copy

import pytest
import torch
from sklearn.datasets import load_digits
from training_helpers import tiny_cnn


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 real digit scans as ``[N, 1, 8, 8]`` float32 in [0, 1] and int64 labels."""
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(bunch.target, dtype=torch.int64)


@pytest.fixture()
def small_digits(digits) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 256 digits: enough for determinism/resume checks, fast to train."""
    images, labels = digits
    return images[:256], labels[:256]


@pytest.fixture()
def make_model():
    """Return a factory of fresh models with identical initial weights (BatchNorm + Dropout)."""
    base = tiny_cnn(dropout=0.25)
    return lambda: copy.deepcopy(base)
