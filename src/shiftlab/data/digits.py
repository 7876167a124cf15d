"""scikit-learn's bundled handwritten digits (UCI optical recognition of handwritten digits).

1,797 real 8 x 8 digit scans with values 0..16, shipped inside the scikit-learn wheel. Tiny; good
for fast tests. There is no official train/test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shiftlab.data.dataset import ImageDataset, index_labels, missing_data, select_split, to_unit_float

MAX_VALUE = 16


def load_digits(root: str | Path | None = None, split: str | None = None) -> ImageDataset:
    """Load scikit-learn's ``load_digits`` as an :class:`ImageDataset`.

    Args:
        root: must be ``None``: the data ships inside scikit-learn.
        split: ``None``/``"all"`` (default, 1,797), or ``"train"``/``"test"`` of the fixed split
            (see :func:`shiftlab.data.dataset.select_split`).

    Shape:
        - images: :math:`(N, 1, 8, 8)`, float32 in ``[0, 1]`` (values / 16)
        - labels: :math:`(N,)`, int64 in ``[0, 10)``
    """
    if root is not None:
        raise ValueError("digits ships inside scikit-learn; root does not apply")
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ModuleNotFoundError as error:
        raise missing_data("scikit-learn's digits", str(error), "Install it with `pip install scikit-learn`.") from error
    bunch = sklearn_load_digits()
    images = to_unit_float(np.asarray(bunch.images)[:, None], MAX_VALUE)
    classes = [str(name) for name in bunch.target_names]
    dataset = ImageDataset(images, index_labels(np.asarray(bunch.target)), classes, "digits", "sklearn.datasets.load_digits")
    return select_split(dataset, split)
