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
rank = int(sys.argv[1])
with process_group(Launch(rank=rank, world_size=2, local_rank=rank), "cpu", command="shiftlab measure"):
    distributed.all_gather(rank)  # both ranks are in the group and alive
    print("ready", flush=True)
    if rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # stopped, not dead: its sockets stay open
    distributed.all_gather(rank)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_waiting_for_a_stopped_peer_gives_up_after_the_stated_timeout_naming_it():
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1",
           "SHIFTLAB_PEER_TIMEOUT": "0.05"}  # minutes: 3 s
    ranks = [subprocess.Popen([sys.executable, "-c", RANK, str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT) for r in (0, 1)]
    try:
        for p in ranks:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()  # type: ignore[union-attr]
        start = time.monotonic()
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
        for p in ranks:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
