"""Real pretrained networks that no one here trained, loaded from the optional packages that ship
their weights (``docs/gallery.md``). Nothing is downloaded: each loader reads a file inside an
installed package, without importing that package, into a module defined here, with
``torch.load(..., weights_only=True)``.

- :func:`load_digit_cnn`: the MNIST CNN of ``digit-recognizer-py`` (conv-ReLU-maxpool x 3, a
  fully connected head): the classic max-pool network, ``[N, 1, 28, 28]`` in ``[0, 1]`` -> logits.
- :func:`load_pnet`: MTCNN's P-Net from ``facenet-pytorch``, a small fully convolutional face
  detector: ``[N, 3, H, W]`` RGB in ``[0, 1]`` -> face-probability map ``[N, 1, h, w]``.
"""

from shiftlab.gallery.digit_cnn import DigitCNN, load_digit_cnn
from shiftlab.gallery.files import package_file
from shiftlab.gallery.pnet import PNet, load_pnet

__all__ = ["DigitCNN", "PNet", "load_digit_cnn", "load_pnet", "package_file"]
