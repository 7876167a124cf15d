"""SIGTERM handled like Ctrl-C: a ``kill PID``, a job scheduler or torchrun stopping the command
unwinds it the same way, so a study's worker processes are stopped with it instead of running on
as orphans that keep writing into the run directory (``docs/reliability.md``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "sigterm_raises"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM. A ``KeyboardInterrupt``, so
    every clean-up written for Ctrl-C runs for it too."""


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the previous
    handler is restored on exit. Outside the main thread (where Python cannot set handlers) it
    changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
