"""A rank waiting for a stopped peer (SIGSTOP: a debugger, a suspended job) gives up after
``SHIFTLAB_PEER_TIMEOUT`` minutes with a message naming the stopped rank (issue 21, case 10);
before, it waited in the exchange for the process group's 24 hours."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RANK = """
import os, signal, sys
from shiftlab.cli.torchrun import Launch, process_group
from shiftlab.measure import distributed
from shiftlab.cli.signals import Terminated, sigterm_raises
rank = int(sys.argv[1])
try:
    with sigterm_raises(), process_group(Launch(rank=rank, world_size=2, local_rank=rank), "cpu",
                                         command="shiftlab measure"):  # as shiftlab.cli.main runs a rank
        distributed.all_gather(rank)  # both ranks are in the group and alive
        print("ready", flush=True)
        if rank == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGSTOP)  # stopped, not dead: its sockets stay open
        distributed.all_gather(rank)
except Terminated:
    print(f"shiftlab measure: rank {rank}: terminated (SIGTERM)", file=sys.stderr)
    sys.exit(143)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(stopped: int, minutes: str = "0.05") -> tuple[list[subprocess.Popen], float]:
    """Ranks 0 and 1 (rank 0 holds the store, as torch.distributed's env:// start makes it), with
    rank ``stopped`` stopped once both are in the group: (the processes, when both were ready)."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1",
           "SHIFTLAB_PEER_TIMEOUT": minutes}  # 0.05 minutes: 3 s
    ranks = [subprocess.Popen([sys.executable, "-c", RANK, str(r), str(stopped)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for r in (0, 1)]
    for p in ranks:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()  # type: ignore[union-attr]
    return ranks, time.monotonic()


def _kill(ranks: list[subprocess.Popen]) -> None:
    for p in ranks:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


def test_a_rank_waiting_for_a_stopped_peer_gives_up_after_the_stated_timeout_naming_it():
    ranks, start = _start(stopped=1)
    try:
        try:
            ranks[0].wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("rank 0 still waits for the stopped rank 1 after 15 s") from None
        waited = time.monotonic() - start
        print(f"rank 0 waited {waited:.1f} s")
        err = ranks[0].stderr.read()  # type: ignore[union-attr]
        assert ranks[0].returncode == 2, err
        assert 3 <= waited < 8, waited
        assert ("shiftlab measure: rank 0: stopped: rank 1 has not answered for 3 s (0.05 minutes; stopped or hung?); "
                "giving up (SHIFTLAB_PEER_TIMEOUT sets the wait, in minutes)") in err, err
    finally:
        _kill(ranks)


def test_a_rank_whose_store_stops_answering_gives_up_too():
    ranks, start = _start(stopped=0)  # rank 0 holds the store (under torchrun: torchrun does)
    try:
        try:
            ranks[1].wait(15)
        except subprocess.TimeoutExpired:
            raise AssertionError("rank 1 still waits for the stopped rank 0 after 15 s") from None
        waited = time.monotonic() - start
        print(f"rank 1 waited {waited:.1f} s")
        err = ranks[1].stderr.read()  # type: ignore[union-attr]
        assert ranks[1].returncode == 2 and waited < 10, (waited, err)
        assert "shiftlab measure: rank 1: stopped: " in err and "giving up (SHIFTLAB_PEER_TIMEOUT" in err, err
        assert "the launch's store at 127.0.0.1:" in err or "rank 0 has not answered" in err, err
    finally:
        _kill(ranks)


def test_sigterm_reaches_a_rank_blocked_in_an_exchange():
    ranks, _ = _start(stopped=1, minutes="5")  # rank 0 waits in the exchange; the peer timeout is far away
    try:
        time.sleep(1)
        start = time.monotonic()
        ranks[0].send_signal(signal.SIGTERM)
        try:
            ranks[0].wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError("rank 0, blocked in an exchange, ignored SIGTERM for 20 s") from None
        waited = time.monotonic() - start
        print(f"rank 0 stopped {waited:.1f} s after SIGTERM")
        err = ranks[0].stderr.read()  # type: ignore[union-attr]
        assert ranks[0].returncode == 143 and waited < 15, (waited, err)
        assert "shiftlab measure: rank 0: terminated (SIGTERM) while waiting for the other ranks" in err, err
    finally:
        _kill(ranks)
