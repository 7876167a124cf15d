"""Files sent from one rank to another over the ``torch.distributed`` process group: how the runs
of a distributed study reach rank 0's run directory without a shared filesystem
(``docs/study.md``, "Running under torchrun").

Both calls are point-to-point: rank ``src`` calls :func:`send_files`, rank ``dst`` calls
:func:`receive_files`, and no other rank takes part. The files travel pickled (the object
point-to-point calls of ``torch.distributed``), so the backend must carry CPU tensors (gloo, or
``"cpu:gloo,cuda:nccl"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch.distributed as dist

from shiftlab.io import write_bytes_atomic

__all__ = ["receive_files", "send_files"]


def send_files(root: Path, paths: Sequence[Path], dst: int) -> None:
    """Send the files ``paths`` (under ``root``), in their order, to rank ``dst``."""
    dist.send_object_list([[(path.relative_to(root).as_posix(), path.read_bytes()) for path in paths]], dst=dst)


def receive_files(root: Path, src: int) -> list[Path]:
    """Receive the files rank ``src`` sends with :func:`send_files` and write each atomically under
    ``root`` (at the same path relative to it), in the order they were sent; return their paths."""
    box: list = [None]
    dist.recv_object_list(box, src=src)
    written = []
    for relative, data in box[0]:
        path = root / relative
        if root.resolve() not in path.resolve().parents:
            raise ValueError(f"rank {src} sent {relative!r}, a path outside {root}")
        write_bytes_atomic(path, data, root=root)
        written.append(path)
    return written
