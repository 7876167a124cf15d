"""MTCNN's P-Net from ``facenet-pytorch`` (MIT): a small fully convolutional face detector.

Architecture (from the package's ``facenet_pytorch/models/mtcnn.py``, rewritten here so that the
package, which imports torchvision, is never imported): ``Conv2d(3, 10, 3)``, ``PReLU``,
``MaxPool2d(2, 2, ceil_mode=True)``, ``Conv2d(10, 16, 3)``, ``PReLU``, ``Conv2d(16, 32, 3)``,
``PReLU``, then two 1x1 heads: ``conv4_1`` (2 channels, softmax: not-face / face) and
``conv4_2`` (4 channels: box corrections). No convolution pads, so an ``H x W`` input gives an
``h x w`` map with ``h = ceil((H - 2) / 2) - 4``; each output pixel sees a 12 x 12 window and the
windows step by 2 pixels. The weights are the package's ``data/pnet.pt`` (Zhang et al. 2016's
MTCNN, converted from the TensorFlow port of ``davidsandberg/facenet`` with the kernels
transposed, so the network takes images as ``[N, C, H, W]``, not transposed as the original
Caffe weights did). MTCNN feeds it RGB pixels as ``(x - 127.5) * 0.0078125`` for ``x`` in
``0..255``; :class:`PNet` takes RGB in ``[0, 1]`` and does that itself, first. MTCNN runs P-Net
on an image pyramid so that faces are about 12 pixels tall at one of its scales. See
``docs/gallery.md``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from shiftlab.gallery.files import package_file
from shiftlab.gallery.normalize import Normalize
from shiftlab.weights import load_weights

__all__ = ["PNET_MEAN", "PNET_STD", "STEP", "WINDOW", "PNet", "load_pnet", "window_centre"]

PACKAGE, PIP_NAME, WEIGHTS = "facenet_pytorch", "facenet-pytorch", "data/pnet.pt"
#: MTCNN's ``(x - 127.5) * 0.0078125`` on ``0..255`` pixels, written for ``[0, 1]`` pixels:
#: ``(x - 0.5) / (128 / 255)``.
PNET_MEAN, PNET_STD = 0.5, 128 / 255
#: Output pixel ``(i, j)`` sees the input window of rows ``STEP i .. STEP i + WINDOW - 1`` (likewise
#: columns): MTCNN's ``cellsize`` and ``stride``.
WINDOW, STEP = 12, 2


def window_centre(i: int, j: int) -> tuple[float, float]:
    """The centre ``(row, column)``, in input pixels, of the window seen by output pixel ``(i, j)``.

    Example:
        >>> window_centre(0, 3)
        (5.5, 11.5)
    """
    return STEP * i + (WINDOW - 1) / 2, STEP * j + (WINDOW - 1) / 2


class PNet(nn.Module):
    """P-Net with its input scaling as the first layer; :meth:`forward` gives the face probability.

    Module paths match the package's state dict (``conv1``, ``prelu1``, ``pool1``, ``conv2``,
    ``prelu2``, ``conv3``, ``prelu3``, ``conv4_1``, ``conv4_2``), after ``normalize``. Without
    :func:`load_pnet` the weights are PyTorch's random init.

    Shape:
        - Input: :math:`(N, 3, H, W)`, RGB in ``[0, 1]``, :math:`H, W \\ge 12`
        - Output: :math:`(N, 1, h, w)` with :math:`h = \\lceil (H - 2) / 2 \\rceil - 4` (likewise
          :math:`w`): the probability that the 12 x 12 window at ``(2 i, 2 j)`` holds a face

    Example:
        >>> import torch
        >>> PNet()(torch.rand(1, 3, 12, 16)).shape
        torch.Size([1, 1, 1, 3])
    """

    def __init__(self) -> None:
        super().__init__()
        self.normalize = Normalize([PNET_MEAN] * 3, [PNET_STD] * 3)
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def features(self, x: Tensor) -> Tensor:
        """The trunk's map before the heads. Shape: :math:`(N, 3, H, W) \\to (N, 32, h, w)`."""
        x = self.pool1(self.prelu1(self.conv1(self.normalize(x))))
        return self.prelu3(self.conv3(self.prelu2(self.conv2(x))))

    def forward(self, x: Tensor) -> Tensor:
        return self.softmax4_1(self.conv4_1(self.features(x)))[:, 1:]

    def box_regression(self, x: Tensor) -> Tensor:
        """MTCNN's box corrections per window (``conv4_2``): offsets of the window's corners
        ``(x1, y1, x2, y2)`` as fractions of its size. Shape: :math:`(N, 3, H, W) \\to (N, 4, h, w)`."""
        return self.conv4_2(self.features(x))


def load_pnet(weights: str | Path | None = None) -> PNet:
    """The pretrained P-Net, in eval mode, on the CPU.

    Args:
        weights: a state-dict file to load instead of the package's own ``data/pnet.pt``.

    Returns:
        :class:`PNet` taking ``[N, 3, H, W]`` RGB images in ``[0, 1]`` and giving the
        face-probability map ``[N, 1, h, w]``.

    Raises:
        ModuleNotFoundError: ``facenet-pytorch`` is not installed (the message gives the pip line).
        ValueError: the file's keys or shapes do not match :class:`PNet` (all of them named).
    """
    path = package_file(PACKAGE, WEIGHTS, pip_name=PIP_NAME) if weights is None else Path(weights)
    return load_weights(PNet(), path)
