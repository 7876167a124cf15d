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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from shiftlab.measure.runner import resolve_device

__all__ = ["SPREAD", "WAIT", "Launch", "launch_from_env", "process_group", "quiet", "rank_device"]

#: The commands that spread their work over the ranks.
SPREAD = ("measure", "study")
#: How long a rank waits for the others in a collective: a study's ranks wait at its end for the
#: slowest rank, as long as the ranks' shares differ.
WAIT = timedelta(hours=24)
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


@contextmanager
def process_group(launch: Launch, device: str) -> Iterator[None]:
    """Join the default process group (``MASTER_ADDR:MASTER_PORT``) for the block, on ``device``
    (``rank_device``), and leave it after, also when the block raises. A block that ends normally
    ends at a barrier, so the ranks leave together: a rank that tears its connections down while
    another still uses them can abort that one (gloo, seen as SIGABRT at exit). A rank whose block
    raises leaves at once; torchrun then stops the others."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", rank=launch.rank,
                            world_size=launch.world_size, timeout=WAIT)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


@contextmanager
def quiet() -> Iterator[None]:
    """Send what the block prints to stdout (results, progress bars) nowhere: a rank other than 0."""
    with open(os.devnull, "w") as sink, redirect_stdout(sink):
        yield
