"""The pretrained MNIST CNN of ``digit-recognizer-py`` (MIT): the classic max-pool network.

Architecture (from the package's ``digit_recognizer/model.py``, rewritten here so that the
package, which imports torchvision, is never imported): three stages of ``Conv2d(3x3,
padding=1)``, ``ReLU``, ``MaxPool2d(2)`` (widths 32, 64, 128; 28 -> 14 -> 7 -> 3), then a fully
connected head ``1152 -> 256 -> ReLU -> 10``. The weights are the package's
``digit_recognizer/models/handwriting_model.pth``; its inputs were normalised with the MNIST
mean and standard deviation ``(0.1307, 0.3081)``, which :class:`DigitCNN` does itself, first.
See ``docs/gallery.md``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from shiftlab.gallery.files import package_file
from shiftlab.gallery.normalize import Normalize
from shiftlab.weights import load_weights

__all__ = ["MNIST_MEAN", "MNIST_STD", "DigitCNN", "load_digit_cnn"]

PACKAGE, PIP_NAME, WEIGHTS = "digit_recognizer", "digit-recognizer-py", "models/handwriting_model.pth"
#: The normalisation the package applies (``transforms.Normalize((0.1307,), (0.3081,))``).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _stage(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]


class DigitCNN(nn.Module):
    """digit-recognizer-py's CNN with its input normalisation as the first layer.

    Module paths match the package's state dict (``conv_layers.0`` ... ``fc_layers.2``):
    ``normalize``, ``conv_layers`` (conv-ReLU-maxpool at indices 0-2, 3-5, 6-8), ``flatten``,
    ``fc_layers``. Without :func:`load_digit_cnn` the weights are PyTorch's random init.

    Shape:
        - Input: :math:`(N, 1, 28, 28)`, grey values in ``[0, 1]``, white digit on black (MNIST)
        - Output: :math:`(N, 10)` logits for the digits 0-9

    Example:
        >>> import torch
        >>> DigitCNN()(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize([MNIST_MEAN], [MNIST_STD])
        self.conv_layers = nn.Sequential(*_stage(1, 32), *_stage(32, 64), *_stage(64, 128))
        self.flatten = nn.Flatten()
        self.fc_layers = nn.Sequential(nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_layers(self.flatten(self.conv_layers(self.normalize(x))))


def load_digit_cnn(weights: str | Path | None = None) -> DigitCNN:
    """The pretrained digit CNN, in eval mode, on the CPU.

    Args:
        weights: a state-dict file to load instead of the package's own
            ``digit_recognizer/models/handwriting_model.pth``.

    Returns:
        :class:`DigitCNN` taking ``[N, 1, 28, 28]`` images in ``[0, 1]``.

    Raises:
        ModuleNotFoundError: ``digit-recognizer-py`` is not installed (the message gives the pip line).
        ValueError: the file's keys or shapes do not match :class:`DigitCNN` (all of them named).
    """
    path = package_file(PACKAGE, WEIGHTS, pip_name=PIP_NAME) if weights is None else Path(weights)
    return load_weights(DigitCNN(), path)
