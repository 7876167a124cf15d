"""Atomic writes of result files: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["json_safe", "write_text_atomic", "write_json_atomic"]


def json_safe(value: object) -> object:
    """``value`` with every non-finite float replaced by ``"inf"``, ``"-inf"`` or ``"nan"`` (recursively in dicts, lists, tuples)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same directory, which
    is flushed, fsync'd, given the usual permissions and moved over ``path`` with ``os.replace``.
    An interruption at any moment leaves the old file or the new one, never a partial file (the
    temporary file is removed when ``write`` raises)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """``data`` written to ``path`` with :func:`write_atomic`."""
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` (UTF-8) written to ``path`` with :func:`write_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, payload: object, *, indent: int | None = 2) -> None:
    """``json.dumps(payload, indent=indent)`` written atomically (NaN/Inf are rejected, not
    written); ``indent=None`` writes compact JSON (half the size of an indented file)."""
    separators = None if indent is not None else (",", ":")
    write_text_atomic(path, json.dumps(payload, indent=indent, separators=separators, allow_nan=False) + "\n")
