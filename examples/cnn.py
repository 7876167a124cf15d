"""Example models for ``shiftlab measure``: a small max-pool CNN, with zero or circular padding.

    shiftlab measure examples/cnn.py:maxpool_cnn --input-shape 1,28,28
    shiftlab measure examples/cnn.py:maxpool_cnn_circular --input-shape 1,28,28
"""

import torch
from torch import nn


def _cnn(padding_mode: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, padding_mode=padding_mode),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, padding_mode=padding_mode),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def maxpool_cnn() -> nn.Module:
    """conv-ReLU-maxpool x 2 with zero padding, then a fully connected head (input 1x28x28)."""
    return _cnn("zeros")


def maxpool_cnn_circular() -> nn.Module:
    """The same CNN with circular padding."""
    return _cnn("circular")
