"""Example models for ``shiftlab measure``: a small max-pool CNN, with zero or circular padding,
and the same kind of network trained on scikit-learn's digits.

    shiftlab measure examples/cnn.py:maxpool_cnn --input-shape 1,28,28
    shiftlab measure examples/cnn.py:maxpool_cnn_circular --input-shape 1,28,28
    shiftlab measure examples/cnn.py:digits_cnn --data digits --shifts 2

``maxpool_cnn`` and ``maxpool_cnn_circular`` have random weights: they predict nearly one class
for every image, random or real, so their invariance numbers are trivial (``shiftlab measure``
says so); their per-layer equivariance errors are meaningful. ``digits_cnn`` is trained, so its
predictions, and their invariance, mean something.
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


def digits_cnn(epochs: int = 30) -> nn.Module:
    """conv-ReLU-maxpool x 2 with circular padding and a global average pool, trained on the
    train split of scikit-learn's 8x8 digits (``--data digits`` measures it on the test split).

    Trains on the CPU in a few seconds, seeded (about 96% test accuracy with 30 epochs).
    """
    from shiftlab.data import load
    from shiftlab.training import TrainConfig, train

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, padding_mode="circular"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    data = load("digits", split="train")
    train(model, data.images, data.labels, TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=0), device="cpu")
    return model.eval()
