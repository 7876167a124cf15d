"""``shiftlab.cli.torchrun.process_group``: the ranks of a block that ends normally leave the
group together (a barrier), so no rank tears down connections another still uses."""

from __future__ import annotations

import json
import os
import socket
import time

import torch.multiprocessing as mp

from shiftlab.cli.torchrun import Launch, process_group

#: How long rank 0 stays in the block after rank 1 has finished its part.
LATE = 1.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    with process_group(Launch(rank=rank, world_size=2, local_rank=rank), "cpu"):
        if rank == 0:
            time.sleep(LATE)
        ended = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    left = time.monotonic()
    with open(f"{folder}/rank{rank}.json", "w") as f:
        json.dump({"ended": ended, "left": left}, f)


def test_a_rank_that_ends_early_leaves_the_group_only_when_the_last_rank_ends(tmp_path):
    mp.start_processes(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    fast, slow = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (1, 0))
    assert slow["ended"] - fast["ended"] > LATE / 2  # rank 1 really finished its block first
    assert fast["left"] >= slow["ended"]  # and waited for rank 0 before leaving
