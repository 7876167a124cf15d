"""Real pretrained networks that no one here trained, loaded from the optional packages that ship
their weights (``docs/gallery.md``). Nothing is downloaded: each loader reads a file inside an
installed package, without importing that package, into a module defined here, with
``torch.load(..., weights_only=True)``.

- :func:`load_digit_cnn`: the MNIST CNN of ``digit-recognizer-py`` (conv-ReLU-maxpool x 3, a
  fully connected head): the classic max-pool network, ``[N, 1, 28, 28]`` in ``[0, 1]`` -> logits.
- :func:`load_pnet`: MTCNN's P-Net from ``facenet-pytorch``, a small fully convolutional face
  detector: ``[N, 3, H, W]`` RGB in ``[0, 1]`` -> face-probability map ``[N, 1, h, w]``.
- :func:`load_resnet18`: ResNet-18 with ImageNet's normalisation inside, random (seeded) unless a
  local state dict is given: ``[N, 3, H, W]`` RGB in ``[0, 1]`` -> logits ``[N, 1000]``
  (:mod:`shiftlab.gallery.imagenet_resnet`).
"""

from shiftlab.gallery.digit_cnn import DigitCNN, load_digit_cnn
from shiftlab.gallery.files import package_file
from shiftlab.gallery.imagenet_resnet import load_resnet18
from shiftlab.gallery.pnet import PNet, load_pnet

__all__ = ["DigitCNN", "PNet", "load_digit_cnn", "load_pnet", "load_resnet18", "package_file"]
