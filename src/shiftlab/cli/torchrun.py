"""The ``shiftlab`` command under torchrun (``docs/scaling.md``): the launcher's environment, the
process group for the command's lifetime, and quiet ranks.

torchrun starts one process per rank with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` set. With more than one process, ``shiftlab measure`` and
``shiftlab study`` join the default process group, spread their work over the ranks and leave
the group at the end, also on error. The backend is gloo; on a GPU, gloo for CPU tensors and
NCCL for CUDA tensors, each rank on the GPU of its local rank. Rank 0 prints and writes the
results; the other ranks print only their errors. Other commands run on rank 0 alone.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from shiftlab.measure.runner import resolve_device

__all__ = ["PEER_TIMEOUT_MINUTES", "SPREAD", "WAIT", "Launch", "peer_timeout", "launch_from_env", "process_group", "quiet",
           "rank_device"]

#: The commands that spread their work over the ranks.
SPREAD = ("measure", "study")
#: How long a rank waits for the others in a collective: a study's ranks wait at its end for the
#: slowest rank, as long as the ranks' shares differ.
WAIT = timedelta(hours=24)
#: How long a rank waits for a peer that has stopped answering (SIGSTOP, a debugger, a hung
#: machine) before it gives up, in minutes; ``SHIFTLAB_PEER_TIMEOUT`` in the environment sets it.
#: A slow peer still answers (a heartbeat thread), so only ``WAIT`` bounds waiting for it.
PEER_TIMEOUT_MINUTES = 10.0
#: Seconds a rank blocked in a collective is given to act on SIGTERM / Ctrl-C before its heartbeat
#: ends the process (exit 143 / 130): Python runs the handler only once the collective returns.
STOP_GRACE = 3.0
#: What torchrun sets for every rank.
_NEEDED = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch of ``world_size`` processes."""

    rank: int
    world_size: int
    local_rank: int


def _integer(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ValueError(f"{name}={environ[name]!r} in the environment is not an integer; start shiftlab "
                         "with torchrun, e.g. torchrun --nproc_per_node=2 -m shiftlab ...") from None


def launch_from_env(environ: Mapping[str, str] = os.environ) -> Launch | None:
    """The launch torchrun describes in ``environ``; None for a single process (no ``WORLD_SIZE``,
    or 1).

    >>> launch_from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    Launch(rank=1, world_size=2, local_rank=1)
    >>> launch_from_env({}) is None
    True
    """
    if "WORLD_SIZE" not in environ or _integer(environ, "WORLD_SIZE") <= 1:
        return None
    missing = [name for name in _NEEDED if not environ.get(name)]
    if missing:
        raise ValueError(f"WORLD_SIZE={environ['WORLD_SIZE']} is set but {', '.join(missing)} not: start shiftlab "
                         "with torchrun, e.g. torchrun --nproc_per_node=2 -m shiftlab ..., or unset WORLD_SIZE")
    launch = Launch(_integer(environ, "RANK"), _integer(environ, "WORLD_SIZE"), _integer(environ, "LOCAL_RANK"))
    if not 0 <= launch.rank < launch.world_size or launch.local_rank < 0:
        raise ValueError(f"RANK={launch.rank}, LOCAL_RANK={launch.local_rank} do not fit WORLD_SIZE={launch.world_size}")
    return launch


def rank_device(device: str, launch: Launch) -> str:
    """The ``--device`` of this rank: a GPU without an index (``cuda``, or ``auto`` where CUDA is
    available) is the GPU of its local rank, ``cuda:LOCAL_RANK``; anything else stays as it is."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        return f"cuda:{launch.local_rank}"
    return str(dev)


def peer_timeout(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds a rank waits for a peer that stopped answering: ``SHIFTLAB_PEER_TIMEOUT`` (minutes,
    > 0) or :data:`PEER_TIMEOUT_MINUTES`.

    >>> peer_timeout({"SHIFTLAB_PEER_TIMEOUT": "2"})
    120.0
    """
    text = environ.get("SHIFTLAB_PEER_TIMEOUT", "").strip()
    if not text:
        return PEER_TIMEOUT_MINUTES * 60
    try:
        minutes = float(text)
    except ValueError:
        minutes = float("nan")
    if not 0 < minutes < 10**6:
        raise ValueError(f"SHIFTLAB_PEER_TIMEOUT={text!r} in the environment must be a number of minutes > 0, e.g. 10")
    return minutes * 60


class _Heartbeat:
    """Every rank counts up ``shiftlab/alive/RANK`` in the launch's store (a client of its own,
    ``MASTER_ADDR:MASTER_PORT``) from a daemon thread, and watches the others' counters. A
    stopped process stops all its threads: when a peer's counter has not moved for ``timeout``
    seconds, or the store itself stops answering, the rank prints one line naming the peer and
    ends the process with exit code 2 (its main thread may be blocked in a collective, where no
    Python code runs). A rank that left after the final barrier says so first."""

    def __init__(self, launch: Launch, timeout: float, command: str) -> None:
        self.launch, self.timeout, self.command = launch, timeout, command
        self.done = threading.Event()
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                              timeout=timedelta(seconds=timeout), wait_for_workers=False)
        self.store = dist.PrefixStore("shiftlab/", store)
        self.interval = min(5.0, timeout / 10)
        self.last_ok = time.monotonic()  # the last round of the store that answered
        self.thread = threading.Thread(target=self._run, name="shiftlab-heartbeat", daemon=True)
        self.thread.start()
        # SIGTERM / Ctrl-C while the main thread is blocked in a collective: Python runs its handler only
        # when the collective returns, so the signal also wakes the judge (signal.set_wakeup_fd)
        self.wake: tuple[socket.socket, socket.socket] | None = None
        self.signalled: tuple[int, float, object] | None = None
        if threading.current_thread() is threading.main_thread():
            pair = socket.socketpair()
            for end in pair:
                end.setblocking(False)
            self.previous_fd = signal.set_wakeup_fd(pair[1].fileno(), warn_on_full_buffer=False)
            self.wake = pair
        # a store that stops answering (its host stopped) blocks the heartbeat's call: another thread judges
        threading.Thread(target=self._judge, name="shiftlab-heartbeat-judge", daemon=True).start()

    def _store_gone(self, why: str) -> None:
        self._give_up(f"the launch's store at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} {why}: "
                      "torchrun or rank 0 stopped?")

    def _main_at(self) -> object:
        """Where the main thread is: its innermost frame and instruction (unchanged while it is
        blocked in a collective)."""
        frame = sys._current_frames().get(threading.main_thread().ident or -1)
        return None if frame is None else (id(frame), frame.f_lasti, frame.f_lineno)

    def _signals(self, wait: float) -> None:
        """Wait up to ``wait`` seconds for a signal; a SIGTERM / SIGINT that the main thread has not
        acted on ``STOP_GRACE`` seconds later (it has not moved: blocked in a collective) ends the
        process with 143 / 130, as the main thread would have."""
        wake = self.wake
        if wake is None:
            self.done.wait(wait)
            return
        try:  # close() may close the pair meanwhile
            got = wake[0].recv(64) if select.select([wake[0]], [], [], wait)[0] else b""
        except (OSError, ValueError):
            return
        for signum in got:
            if signum in (signal.SIGTERM, signal.SIGINT) and self.signalled is None:
                self.signalled = (signum, time.monotonic(), self._main_at())
        if self.signalled is not None and time.monotonic() - self.signalled[1] > STOP_GRACE and not self.done.is_set():
            signum, _, where = self.signalled
            if where is None or self._main_at() != where:  # the main thread moved: it is unwinding
                self.signalled = None
                return
            what = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
            print(f"{self.command}: rank {self.launch.rank}: {what} while waiting for the other ranks in an exchange",
                  file=sys.stderr, flush=True)
            os._exit(143 if signum == signal.SIGTERM else 130)

    def _judge(self) -> None:
        while not self.done.is_set():
            self._signals(min(self.interval, 1.0))
            if self.done.is_set():
                return
            if time.monotonic() - self.last_ok > self.timeout:
                self._store_gone(f"has not answered for {self.timeout:.0f} s ({self.timeout / 60:g} minutes)")

    def _give_up(self, why: str) -> None:
        if self.done.is_set():
            return
        print(f"{self.command}: rank {self.launch.rank}: stopped: {why}; giving up "
              "(SHIFTLAB_PEER_TIMEOUT sets the wait, in minutes)", file=sys.stderr, flush=True)
        os._exit(2)

    def _run(self) -> None:
        me, peers = self.launch.rank, [r for r in range(self.launch.world_size) if r != self.launch.rank]
        seen = {r: (-1, time.monotonic()) for r in peers}
        while not self.done.wait(self.interval):
            try:
                self.store.add(f"alive/{me}", 1)
                now = time.monotonic()
                for r in peers:
                    count = self.store.add(f"alive/{r}", 0)
                    if count != seen[r][0]:
                        seen[r] = (count, now)
                    elif now - seen[r][1] > self.timeout and not self.store.check([f"left/{r}"]):
                        self._give_up(f"rank {r} has not answered for {self.timeout:.0f} s ({self.timeout / 60:g} minutes; "
                                      "stopped or hung?)")
                self.last_ok = now
            except Exception as err:  # the store (torchrun, or rank 0) is gone
                self._store_gone(f"failed ({' '.join(str(err).split())[:200]})")

    def close(self, left: bool) -> None:
        self.done.set()
        if self.wake is not None:
            signal.set_wakeup_fd(self.previous_fd)
            for end in self.wake:
                end.close()
            self.wake = None
        if left:
            try:
                self.store.set(f"left/{self.launch.rank}", "1")
            except Exception:  # noqa: S110 - the others are leaving too
                pass


@contextmanager
def process_group(launch: Launch, device: str, *, command: str = "shiftlab") -> Iterator[None]:
    """Join the default process group (``MASTER_ADDR:MASTER_PORT``) for the block, on ``device``
    (``rank_device``), and leave it after, also when the block raises. A block that ends normally
    ends at a barrier, so the ranks leave together: a rank that tears its connections down while
    another still uses them can abort that one (gloo, seen as SIGABRT at exit). A rank whose block
    raises leaves at once; torchrun then stops the others. A rank whose peer stops answering
    (stopped, hung) gives up after :func:`peer_timeout` with a line naming the peer, prefixed
    ``command`` (:class:`_Heartbeat`)."""
    timeout = peer_timeout()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", rank=launch.rank,
                            world_size=launch.world_size, timeout=WAIT)
    heartbeat, left = _Heartbeat(launch, timeout, command), False
    try:
        yield
        dist.barrier()
        left = True
    finally:
        heartbeat.close(left)
        dist.destroy_process_group()


@contextmanager
def quiet() -> Iterator[None]:
    """Send what the block prints to stdout (results, progress bars) nowhere: a rank other than 0."""
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield
