"""Helpers for the training tests (a uniquely named module, importable next to the tests)."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(dropout: float = 0.0) -> nn.Module:
    """An 8x8 digit classifier with a BatchNorm (buffers) and optional Dropout (global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(16 * 4 * 4, 10),
        )


def state_equal(a: nn.Module, b: nn.Module) -> bool:
    """True if two models have bitwise identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def numbers(history: list[dict]) -> list[dict]:
    """History rows without the wall-clock ``seconds``."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]
