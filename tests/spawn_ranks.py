"""Run a function on every rank of a real ``torch.distributed`` process group (spawned
processes, one torch thread each; gloo unless told) and bring back what each rank returned. A
hang fails the test after ``timeout`` seconds instead of blocking the suite."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank: int, fn: Callable, world: int, backend: str, folder: str, args: tuple) -> None:
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        result = fn(*args)
    finally:
        dist.destroy_process_group()
    torch.save(result, f"{folder}/rank{rank}.pt")


def run_ranks(fn: Callable, *args: object, world: int = 2, backend: str = "gloo", timeout: float = 120.0) -> list:
    """``[fn(*args) on rank 0, on rank 1, ...]``; ``fn`` must be importable (a module-level function)
    and return something ``torch.save`` can store."""
    with tempfile.TemporaryDirectory() as folder:
        ctx = mp.start_processes(_entry, args=(fn, world, backend, folder, args), nprocs=world, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + timeout
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                for process in ctx.processes:
                    process.kill()
                raise TimeoutError(f"the {world} ranks did not finish within {timeout} s (a rank waits for ever?)")
        return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=False) for r in range(world)]
