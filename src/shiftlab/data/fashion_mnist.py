"""Fashion-MNIST (Xiao et al., 2017) from the IDX files of Debian's ``dataset-fashion-mnist`` package.

60,000 training and 10,000 test images, 28 x 28 grayscale, 10 clothing classes. The Debian package
installs ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` into :data:`DEFAULT_ROOT`.
"""

from __future__ import annotations

from pathlib import Path

from shiftlab.data.dataset import ImageDataset
from shiftlab.data.idx import load_idx

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
HOW_TO_GET = (
    f"Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files go to {DEFAULT_ROOT}), "
    "or pass root= a directory holding the Fashion-MNIST IDX files "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)."
)


def load_fashion_mnist(root: str | Path | None = None, split: str | None = None) -> ImageDataset:
    """Load Fashion-MNIST from ``root`` (default :data:`DEFAULT_ROOT`).

    Args:
        root: directory holding the IDX files, gzipped or not.
        split: ``"train"`` (default, 60,000), ``"test"`` (10,000) or ``"all"`` (70,000, train first).

    Shape:
        - images: :math:`(N, 1, 28, 28)`, float32 in ``[0, 1]``
        - labels: :math:`(N,)`, int64 in ``[0, 10)``

    Raises:
        FileNotFoundError: if the files are missing; the message says how to install them.
    """
    return load_idx(DEFAULT_ROOT if root is None else root, split, classes=CLASSES, name="fashion-mnist", how=HOW_TO_GET)
