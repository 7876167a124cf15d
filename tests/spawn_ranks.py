"""Run a function on every rank of a real ``torch.distributed`` process group (spawned
processes, one torch thread each; gloo unless told) and bring back what each rank returned. A
hang fails the test after ``timeout`` seconds instead of blocking the suite.

Each rank writes its result, waits at a barrier, publishes the result (a rename) and only then
leaves the group, so no rank tears its connections down while another still uses them. A rank
that crashes (SIGABRT, SIGSEGV) prints every thread's Python stack (``faulthandler``) to the
captured stderr. A crash before every rank has published its result fails the test; one after
(inside torch's ``destroy_process_group`` or the interpreter's exit, when every number the test
checks is on disk) keeps the results with a ``RuntimeWarning`` naming the rank. Such a SIGABRT
("terminate called without an active exception", a C++ thread destroyed while running) was
seen once in CI and once in about 70 local runs of tests/measure/test_distributed.py, at the
end of the run."""

from __future__ import annotations

import faulthandler
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank: int, fn: Callable, world: int, backend: str, folder: str, args: tuple) -> None:
    faulthandler.enable(all_threads=True)
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        torch.save(fn(*args), f"{folder}/rank{rank}.part")
        dist.barrier()
        os.replace(f"{folder}/rank{rank}.part", f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable, *args: object, world: int = 2, backend: str = "gloo", timeout: float = 120.0) -> list:
    """``[fn(*args) on rank 0, on rank 1, ...]``; ``fn`` must be importable (a module-level function)
    and return something ``torch.save`` can store."""
    with tempfile.TemporaryDirectory() as folder:
        ctx = mp.start_processes(_entry, args=(fn, world, backend, folder, args), nprocs=world, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for process in ctx.processes:
                        process.kill()
                    raise TimeoutError(f"the {world} ranks did not finish within {timeout} s (a rank waits for ever?)")
        except mp.ProcessExitedException as err:
            # the crashed rank published its result only after the barrier, where every rank's was saved
            if not (Path(folder) / f"rank{err.error_index}.pt").exists():
                raise RuntimeError(f"rank {err.error_index} died ({err}) before the final barrier; its stderr, "
                                   "above, has its Python stack") from err
            warnings.warn(f"rank {err.error_index} died ({err}) after the final barrier, with every rank's result "
                          "saved (a crash while leaving the process group): the results are kept",
                          RuntimeWarning, stacklevel=2)
        return [torch.load(_result(Path(folder), r), weights_only=False) for r in range(world)]


def _result(folder: Path, rank: int) -> Path:
    """The rank's published result, or the one it saved before the barrier (when the run was
    stopped between the barrier and the rename because another rank crashed)."""
    published = folder / f"rank{rank}.pt"
    return published if published.exists() else folder / f"rank{rank}.part"
