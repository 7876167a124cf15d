"""CIFAR-10 from its "python version" batches (Krizhevsky, 2009), read from a local directory.

The directory (``cifar-10-batches-py`` as extracted from ``cifar-10-python.tar.gz``, or a directory
containing it) holds ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta``.
Each batch is a pickled dict with bytes keys: ``b"data"`` a uint8 array [N, 3072] (1024 red, then
1024 green, then 1024 blue values, each 32 x 32 row major) and ``b"labels"`` a list of N ints;
``batches.meta`` holds ``b"label_names"``.

Security: the batches are pickles. They are read with an unpickler that only resolves the few
numpy names a numpy array needs, which blocks the usual code-execution payloads, and that refuses
an array larger than the file it comes from (``docs/reliability.md``), but pickle is not a safe
format: load only files from a trusted source.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from shiftlab.data.dataset import ImageDataset, check_split, index_labels, missing_data, to_unit_float

SUBFOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_BATCHES = ("test_batch",)
META = "batches.meta"
SIDE = 32
HOW_TO_GET = (
    "Extract the CIFAR-10 python version (cifar-10-python.tar.gz, from the CIFAR-10 web page) and pass "
    f"root= the {SUBFOLDER} directory (data_batch_1..5, test_batch, batches.meta) or its parent."
)
# numpy 2 renamed numpy.core to numpy._core; old pickles (like the real batches) name the former.
_NUMPY_CORE = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the names needed to rebuild numpy arrays and bytes, and
    builds no array of more than ``max_bytes`` bytes (the file's size: an array's data is in the
    file, so a larger one can only be an uninitialised allocation that a forged pickle asks for)."""

    def __init__(self, file: Any, *, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        if module.startswith(("numpy.core.", "numpy._core.")):
            module = f"{_NUMPY_CORE}.{module.split('.', 2)[2]}"
        found = super().find_class(module, name)
        return self._bounded(found) if name == "_reconstruct" else found

    def _bounded(self, reconstruct: Any) -> Any:
        """``_reconstruct(subtype, shape, dtype)`` (which allocates ``shape`` uninitialised),
        refused when the array would hold more than :attr:`max_bytes`."""

        def checked(subtype: Any, shape: Any, dtype: Any) -> Any:
            dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
            if not all(isinstance(d, int) and d >= 0 for d in dims):
                raise pickle.UnpicklingError(f"refusing an array of shape {shape!r}")
            size = math.prod(dims) * np.dtype(dtype).itemsize
            if size > self.max_bytes:
                raise pickle.UnpicklingError(f"refusing an array of {size:,} bytes from a file of {self.max_bytes:,}")
            return reconstruct(subtype, shape, dtype)

        return checked


def _unpickle(path: Path) -> dict[bytes, Any]:
    """The dict pickled in ``path``, rebuilt with :class:`_NumpyOnlyUnpickler`; ``ValueError``
    naming the file for anything else (random bytes, a truncated file, a refused global)."""
    try:
        with path.open("rb") as handle:
            content = _NumpyOnlyUnpickler(handle, max_bytes=path.stat().st_size, encoding="bytes").load()
    except OSError:
        raise
    except Exception as error:  # a corrupt pickle can raise almost anything while it is decoded
        raise ValueError(f"{path}: not a readable CIFAR-10 python batch ({type(error).__name__}: {error}); "
                         "the file is damaged or not from cifar-10-python.tar.gz") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(content).__name__}")
    return content


def _batch_dir(root: str | Path | None) -> Path:
    if root is None:
        raise missing_data("CIFAR-10", "no root given", HOW_TO_GET)
    root = Path(root)
    for candidate in (root, root / SUBFOLDER):
        if (candidate / META).is_file():
            return candidate
    raise missing_data("CIFAR-10 python batches", f"no {META} in {root} or {root / SUBFOLDER}", HOW_TO_GET)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise missing_data(f"CIFAR-10 batch {path.name}", f"looked in {path.parent}", HOW_TO_GET)
    batch = _unpickle(path)
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except KeyError as error:
        raise ValueError(f"{path}: not a CIFAR-10 batch (missing key {error})") from error
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise ValueError(f"{path}: expected uint8 data [N, {3 * SIDE * SIDE}], got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    return data, labels


def load_cifar10(root: str | Path | None = None, split: str | None = None) -> ImageDataset:
    """Load CIFAR-10 from local python batches.

    Args:
        root: the ``cifar-10-batches-py`` directory or its parent (required: there is no standard place).
        split: ``"train"`` (default, the 5 data batches), ``"test"`` (``test_batch``) or ``"all"`` (train then test).

    Shape:
        - images: :math:`(N, 3, 32, 32)`, float32 RGB in ``[0, 1]`` (values / 255)
        - labels: :math:`(N,)`, int64 in ``[0, 10)``

    Raises:
        FileNotFoundError: if the directory or a batch is missing; the message says where to put them.
        ValueError: if a batch does not have the CIFAR-10 layout.
    """
    directory = _batch_dir(root)
    split = check_split(split, default="train")
    names = {"train": TRAIN_BATCHES, "test": TEST_BATCHES, "all": TRAIN_BATCHES + TEST_BATCHES}[split]
    batches = [_read_batch(directory / name) for name in names]
    meta = _unpickle(directory / META)
    if b"label_names" not in meta:
        raise ValueError(f"{directory / META}: not the CIFAR-10 meta file (no label_names)")
    classes = [name.decode() if isinstance(name, bytes) else str(name) for name in meta[b"label_names"]]
    images = to_unit_float(np.concatenate([data for data, _ in batches]).reshape(-1, 3, SIDE, SIDE), 255)
    labels = index_labels(np.concatenate([labels for _, labels in batches]))
    return ImageDataset(images, labels, classes, "cifar10", str(directory))
