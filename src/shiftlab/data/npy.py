"""Read a ``.npy`` file whose header is checked against the file's size before anything is
allocated (``np.load`` trusts the header: 100 bytes claiming 285 TiB make it try to allocate them)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["load_npy"]


def load_npy(path: str | Path) -> np.ndarray:
    """The array in the ``.npy`` file ``path``, read with ``allow_pickle=False`` once its header
    is checked: a known format version, no Python objects, and exactly as many data bytes as the
    header's shape and dtype need.

    Raises:
        ValueError: a damaged or forged file (the message names it and what is wrong).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.npy"
        >>> np.save(path, np.arange(6).reshape(2, 3))
        >>> load_npy(path).shape
        (2, 3)
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f, max_header_size=10_000)
        except Exception as err:  # numpy's header parser raises ValueError, SyntaxError, tokenize.TokenError, ...
            raise ValueError(f"{path}: not a .npy file ({type(err).__name__}: {err})") from err
        header_end = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: holds Python objects (dtype {dtype}); save a numeric array")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed != size - header_end:
        raise ValueError(f"{path}: its header claims {claimed:,} bytes of data ({dtype} {shape}) but the file "
                         f"holds {size - header_end:,}; the file is damaged or truncated")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # a header numpy's own reader parses differently from the check above
        raise ValueError(f"{path}: not a readable .npy file ({type(err).__name__}: {err})") from err
