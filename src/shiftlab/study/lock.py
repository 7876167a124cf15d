"""One study per run directory at a time (``docs/study.md``, "Parallelism and reproducibility").

:func:`run_dir_lock` holds an exclusive ``flock`` on ``RUN_DIR/.lock`` while a study runs. The
operating system releases it when the process ends, however it ends (a SIGKILL included), so a
killed study never leaves the directory locked; a second study started on the same directory
meanwhile refuses at once with the first one's process id.
"""

from __future__ import annotations

import fcntl
import os
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
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
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
