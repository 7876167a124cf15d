"""IDX files (the MNIST file format) and datasets stored as IDX image/label pairs.

The IDX format: two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, then one
big-endian uint32 per dimension, then the values, big-endian, in C order. Files may be gzipped;
gzip is recognised by its magic bytes, not by the file name.

A dataset directory holds ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` and
``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``, each optionally with ``.gz``
(the ``train-images.idx3-ubyte`` spelling is accepted as well).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from shiftlab.data.dataset import ImageDataset, check_split, index_labels, missing_data, to_unit_float

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
#: Label values must lie in ``0 .. MAX_CLASSES - 1`` (the number of classes follows the largest
#: label, so one corrupt label must not make a dataset of millions of classes).
MAX_CLASSES = 100_000
_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


class IdxFormatError(ValueError):
    """A file is not a valid IDX file (wrong magic, unknown type, truncated, or corrupt gzip)."""


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file into an array of native byte order.

    Raises:
        IdxFormatError: on a wrong magic number, an unknown type code, or a data length that does
            not match the header (truncated or trailing bytes).
    """
    if len(data) < 4:
        raise IdxFormatError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, type_code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise IdxFormatError(
            f"{source}: not an IDX file (magic bytes {data[:4].hex()}; expected 0000 then a type code "
            f"in {{{', '.join(f'{code:02x}' for code in _IDX_DTYPES)}}} and a dimension count >= 1)"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(f"{source}: truncated IDX header ({len(data)} of {header_size} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = _IDX_DTYPES[type_code]
    expected = _data_bytes(shape, dtype, source)
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{source}: IDX file {problem}: header says shape {shape} of {dtype.name} "
            f"({expected} data bytes), file has {actual}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


#: The largest IDX payload shiftlab reads (a header claiming more is refused before any data is
#: read or decompressed): 8 GiB, 170x the 60,000 MNIST training images.
MAX_IDX_BYTES = 8 << 30


def _data_bytes(shape: tuple[int, ...], dtype: np.dtype, source: str) -> int:
    """Payload size the header ``shape`` claims (exact integer arithmetic: no wrap-around)."""
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_IDX_BYTES:
        raise IdxFormatError(f"{source}: the IDX header claims shape {shape} of {dtype.name} ({size:,} bytes), more "
                             f"than the {MAX_IDX_BYTES:,} bytes shiftlab reads; the file is corrupt or not a dataset")
    return size


def _read_gzip(path: Path) -> bytes:
    """The IDX bytes of a gzipped file, decompressed no further than its header says (a
    compression bomb is refused after header + 1 extra byte, never fully inflated)."""
    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(4)
            ndim = head[3] if len(head) == 4 else 0
            head += stream.read(4 * ndim)
            if len(head) < 4 + 4 * ndim or head[0] or head[1] or head[2] not in _IDX_DTYPES or ndim == 0:
                return head  # parse_idx names what is wrong with it
            shape = struct.unpack(f">{ndim}I", head[4:])
            expected = _data_bytes(shape, _IDX_DTYPES[head[2]], str(path))
            return head + stream.read(expected + 1)  # one byte more shows trailing data
    except (OSError, EOFError, zlib.error) as error:
        raise IdxFormatError(f"{path}: corrupt or truncated gzip stream ({error})") from error


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzipped or not.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        IdxFormatError: if the file (or its gzip stream) is corrupt or claims more than
            :data:`MAX_IDX_BYTES`; see :func:`parse_idx`.
    """
    path = Path(path)
    with path.open("rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    data = _read_gzip(path) if gzipped else path.read_bytes()
    return parse_idx(data, source=str(path))


def find_idx_file(root: Path, prefix: str, kind: str, ndim: int) -> Path | None:
    """The first existing file among the usual spellings of ``{prefix}-{kind}-idx{ndim}-ubyte[.gz]`` in ``root``."""
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for name in (stem, f"{stem}.gz"):
            if (root / name).is_file():
                return root / name
    return None


def _read_pair(root: Path, prefix: str, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one IDX split, validated against each other."""
    paths = []
    for kind, ndim in (("images", 3), ("labels", 1)):
        path = find_idx_file(root, prefix, kind, ndim)
        if path is None:
            raise missing_data(f"IDX file {prefix}-{kind}-idx{ndim}-ubyte[.gz]", f"looked in {root}", how)
        paths.append(path)
    images, labels = (read_idx(path) for path in paths)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IdxFormatError(f"{paths[0]}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    if 0 in images.shape[1:]:
        raise IdxFormatError(f"{paths[0]}: images of size {images.shape[1]}x{images.shape[2]}; an image needs at "
                             "least one pixel")
    if labels.ndim != 1:
        raise IdxFormatError(f"{paths[1]}: expected labels [N], got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise IdxFormatError(f"{paths[1]}: labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
        raise IdxFormatError(f"{paths[1]}: label values must be class indices 0..{MAX_CLASSES - 1}, found "
                             f"{int(labels.min())}..{int(labels.max())}; the file is corrupt or not a label file")
    if labels.shape[0] != images.shape[0]:
        raise IdxFormatError(f"{paths[0]} holds {images.shape[0]} images but {paths[1]} {labels.shape[0]} labels")
    return images, labels


def load_idx(
    root: str | Path | None = None,
    split: str | None = None,
    *,
    classes: list[str] | None = None,
    name: str = "idx",
    how: str = "Pass root= a directory holding the IDX files.",
) -> ImageDataset:
    """Load an IDX image/label dataset from a directory.

    Args:
        root: directory holding the IDX files (required).
        split: ``"train"`` (default), ``"test"`` (the ``t10k`` files) or ``"all"`` (train then test).
        classes: class names; default ``["0", "1", ...]`` up to the largest label.
        name: the dataset's name.
        how: the how-to-get-it sentence of the :class:`FileNotFoundError` raised for missing files.

    Shape:
        - images: :math:`(N, 1, H, W)`, float32 in ``[0, 1]`` (uint8 / 255)
        - labels: :math:`(N,)`, int64

    Raises:
        FileNotFoundError: if ``root`` or a needed file is missing.
        IdxFormatError: if a file is corrupt or images and labels disagree.
    """
    if root is None:
        raise missing_data("IDX dataset", "no root given", how)
    root = Path(root)
    if not root.is_dir():
        raise missing_data(f"IDX dataset directory {root}", "no such directory", how)
    pairs = [_read_pair(root, prefix, how) for prefix in _SPLIT_PREFIXES[check_split(split, default="train")]]
    images = np.concatenate([pair[0] for pair in pairs])
    labels = index_labels(np.concatenate([pair[1] for pair in pairs]))
    if classes is None:
        classes = [str(k) for k in range(int(labels.max()) + 1 if labels.numel() else 0)]
    return ImageDataset(to_unit_float(images[:, None], 255), labels, list(classes), name, str(root))
