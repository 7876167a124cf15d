"""One study per run directory at a time (``docs/study.md``, "Parallelism and reproducibility").

:func:`run_dir_lock` holds an exclusive ``flock`` on ``RUN_DIR/.lock`` while a study runs. The
operating system releases it when the process ends, however it ends (a SIGKILL included), so a
killed study never leaves the directory locked; a second study started on the same directory
meanwhile refuses at once with the first one's process id.

The lock file is never a way out of the run directory: it is opened with ``O_NOFOLLOW`` and must be
a regular file with one link, else the lock refuses before writing anything (``docs/reliability.md``,
"Run directories").
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RunDirLocked", "run_dir_lock"]

LOCK_NAME = ".lock"


class RunDirLocked(BlockingIOError):
    """Another process is running a study in this run directory."""


@contextmanager
def run_dir_lock(out: Path) -> Iterator[None]:
    """Hold the run directory ``out`` (created if missing) for the body; ``RunDirLocked`` when
    another live process holds it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    fix = f"shiftlab keeps only its own lock file there: remove it (rm {path}) and run again"
    try:
        _check(path, os.lstat(path), fix)  # before opening: a device is never opened
    except FileNotFoundError:
        pass
    try:  # O_NOFOLLOW: a link put there since is refused too; O_NONBLOCK: a FIFO never blocks
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EISDIR):
            _check(path, os.lstat(path), fix)
        raise
    try:
        _check(path, os.fstat(fd), fix)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise RunDirLocked(f"{out} is in use by a running study (pid {holder}); wait for it to finish or stop it, "
                               "then --resume, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _check(path: Path, info: os.stat_result, fix: str) -> None:
    """``OSError`` naming ``path`` unless ``info`` is that of a regular file with one link."""
    if stat.S_ISLNK(info.st_mode):
        raise OSError(f"{path} is a symbolic link (to {os.readlink(path)}); {fix}")
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"{path} is not a regular file ({_kind(info.st_mode)}); {fix}")
    if info.st_nlink != 1:
        raise OSError(f"{path} has {info.st_nlink} hard links (another name of the same file may lie outside the "
                      f"run directory); {fix}")


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a plain file")
