"""Atomic writes of result files: a crash never leaves a half-written file behind; and the rule
for files shiftlab writes in a run directory: never through a link leading out of it
(``docs/reliability.md``, "Run directories"); and :func:`open_regular`, which opens only
regular files for reading (never a FIFO or a device)."""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, overload

__all__ = ["NotARegularFile", "check_inside", "json_safe", "open_regular", "write_atomic", "write_bytes_atomic",
           "write_json_atomic", "write_text_atomic"]


@overload
def json_safe(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def json_safe(value: object) -> object: ...
def json_safe(value: object) -> object:
    """``value`` with every non-finite float replaced by ``"inf"``, ``"-inf"`` or ``"nan"``
    (recursively in dicts, lists, tuples)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def check_inside(path: str | Path, root: str | Path) -> None:
    """``OSError`` unless ``path``, with every symbolic link of its existing part resolved, lies in
    the run directory ``root`` (``root`` itself is where the user pointed, links and all). The
    message names the first component of ``path`` that leads out, and the fix."""
    root_real = Path(os.path.realpath(root))
    path = Path(path)
    if _inside(Path(os.path.realpath(path)), root_real):
        return
    relative = path.relative_to(root) if path.is_relative_to(root) else None
    culprit = path
    if relative is not None:  # the first component that leads out: the link to remove
        culprit = Path(root)
        for part in relative.parts:
            culprit = culprit / part
            if not _inside(Path(os.path.realpath(culprit)), root_real):
                break
    raise OSError(f"{culprit} leads out of the run directory {root} (to {os.path.realpath(culprit)}); shiftlab "
                  "never writes through a link out of a run directory: remove the link, or copy what it points to "
                  "into the run directory")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object], *, root: str | Path | None = None) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same directory, which
    is flushed, fsync'd and moved over ``path`` with ``os.replace``. An interruption at any moment
    leaves the old file or the new one, never a partial file (the temporary file is removed when
    ``write`` raises).

    Links are never written through: the temporary file is created with ``O_EXCL | O_NOFOLLOW``
    (a new file, never an existing one or a link's target), and ``os.replace`` replaces a link at
    ``path`` instead of writing its target. With ``root`` (the run directory), ``path``'s folder
    must lie in ``root`` once its links are resolved (:func:`check_inside`), checked before any
    folder is made."""
    path = Path(path)
    if root is not None:
        check_inside(path.parent, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if root is not None:
        check_inside(path.parent, root)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask gives the usual permissions
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, root: str | Path | None = None) -> None:
    """``data`` written to ``path`` with :func:`write_atomic` (``root``: the run directory it must stay in)."""
    write_atomic(path, lambda f: f.write(data), root=root)


def write_text_atomic(path: str | Path, text: str, *, root: str | Path | None = None) -> None:
    """``text`` (UTF-8) written to ``path`` with :func:`write_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"), root=root)


def write_json_atomic(path: str | Path, payload: object, *, indent: int | None = 2, root: str | Path | None = None) -> None:
    """``json.dumps(payload, indent=indent)`` written atomically (NaN/Inf are rejected, not
    written); ``indent=None`` writes compact JSON (half the size of an indented file)."""
    separators = None if indent is not None else (",", ":")
    write_text_atomic(path, json.dumps(payload, indent=indent, separators=separators, allow_nan=False) + "\n",
                      root=root)


class NotARegularFile(OSError):
    """A path to read is a FIFO, a device, a socket or a directory, not a regular file."""


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for reading in binary, only if it is a regular file (links followed):
    :class:`NotARegularFile` naming it otherwise, before anything is read. A FIFO or a device is
    never read (``/dev/zero`` would never end, a FIFO would block forever): the type is checked
    with ``os.stat`` before opening, and again with ``fstat`` on the descriptor, which is opened
    with ``O_NONBLOCK`` so that opening a FIFO never blocks."""
    _check_regular(path, os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(path, os.fstat(fd))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(path: str | Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
        kind = next((name for test, name in kinds if test(info.st_mode)), "not a plain file")
        raise NotARegularFile(f"{path} is not a regular file ({kind}); shiftlab reads only regular files: "
                              "put the file itself there, not a link to a device or a pipe")
