"""Atomic writes of result files: a crash never leaves a half-written file behind."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

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


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, payload: object, *, indent: int | None = 2) -> None:
    """``json.dumps(payload, indent=indent)`` written atomically (NaN/Inf are rejected, not
    written); ``indent=None`` writes compact JSON (half the size of an indented file)."""
    separators = None if indent is not None else (",", ":")
    write_text_atomic(path, json.dumps(payload, indent=indent, separators=separators, allow_nan=False) + "\n")
