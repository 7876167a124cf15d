"""Measurement under an initialised ``torch.distributed`` process group (``docs/distributed.md``).

Every rank calls a measuring function with the same model, images and arguments. Each rank
measures one contiguous shard of the images (:func:`shard_bounds`: sizes differ by at most one,
nothing padded or dropped), the ranks exchange their sufficient statistics and every rank adds
them with ``+`` in rank order (:func:`reduce_add`), so every rank gets the same statistics, in
image order for anything that concatenates (the kept predictions table).

The exchange is ``torch.distributed.all_gather_object``: the objects themselves travel (pickled),
with no arithmetic in the collective, so integer counts stay exact, float sums are added in one
fixed order on every rank (every rank gets bitwise the same total) and tables can concatenate,
which an ``all_reduce`` of tensors cannot do. The statistics are small (a few ``[|S|]`` or
``[K]`` vectors per metric or layer; the ``[N, |S|]`` predictions table only when kept), so one
exchange per measurement costs little next to its forward passes. It works on every backend:
with gloo the bytes travel as CPU tensors, with nccl as tensors on
``torch.cuda.current_device()`` (call ``torch.cuda.set_device(local_rank)`` first, as every
nccl program does). Without a process group every function here is the identity (one rank,
all images).

A rank that raises between two exchanges would leave the others waiting in the next one for
ever. Code between exchanges runs inside :func:`all_or_none`: a rank that raises there sends
its error in place of its next exchange, and every other rank raises :class:`PeerFailure`
naming it, so all ranks stop at the same point.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["PeerFailure", "active", "all_gather", "all_or_none", "check_same_everywhere", "first_rank", "local_module",
           "rank", "reduce_add", "shard_bounds", "world_size"]

T = TypeVar("T")


class PeerFailure(RuntimeError):
    """Another rank failed inside a measurement (or the exchange between ranks itself failed),
    so this rank stops at the same point instead of waiting for it."""


@dataclass(frozen=True)
class _Failure:
    """What a failing rank sends in place of its next exchange."""

    rank: int
    error: str


def active() -> bool:
    """Whether a ``torch.distributed`` process group is initialised (of any size)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank in the default group; 0 without one."""
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    """The number of ranks in the default group; 1 without one."""
    return torch.distributed.get_world_size() if active() else 1


def shard_bounds(n: int) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` items, in rank order.

    The first ``n % world_size`` ranks get one item more than the others; every item belongs to
    exactly one rank (nothing padded, nothing dropped), and a rank gets ``lo == hi`` when
    ``n < world_size``. ``(0, n)`` without a process group.

    Example:
        >>> shard_bounds(13)  # no process group here
        (0, 13)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"shard_bounds needs a number of items n >= 0, got {n!r}")
    r, w = rank(), world_size()
    base, extra = divmod(n, w)
    lo = r * base + min(r, extra)
    return lo, lo + base + (r < extra)


def all_gather(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` without a process group).

    Raises :class:`PeerFailure` when another rank sent its failure instead (see
    :func:`all_or_none`) or when the exchange itself fails.
    """
    if not active():
        return [obj]
    gathered = _exchange(obj)
    failed = [p for p in gathered if isinstance(p, _Failure)]
    if failed:
        raise PeerFailure("; ".join(f"rank {f.rank} of {len(gathered)} failed: {f.error}" for f in failed))
    return gathered


def _exchange(obj: object) -> list[Any]:
    out: list[Any] = [None] * torch.distributed.get_world_size()
    try:
        torch.distributed.all_gather_object(out, obj)
    except Exception as err:  # the collective itself failed (a lost peer, a timeout): no second exchange
        raise PeerFailure(f"the exchange between ranks failed: {err}") from err
    return out


def reduce_add(obj: T | None) -> T | None:
    """The sum ``obj_0 + obj_1 + ...`` of every rank's ``obj``, added in rank order, on every rank.

    ``None`` stands for a rank that has nothing to add (it measured no image) and is skipped;
    the result is None only when every rank sent None. Without a process group, ``obj`` itself.
    Objects travel pickled: keep their tensors on the CPU.

    Example:
        >>> reduce_add(3), reduce_add(None)  # no process group here
        (3, None)
    """
    if not active():
        return obj
    parts = [p for p in all_gather(obj) if p is not None]
    return functools.reduce(operator.add, parts) if parts else None


def first_rank(compute: Callable[[], T]) -> T:
    """``compute()`` run on rank 0 only, its value returned on every rank (a decision every rank
    must share, such as the polyphase certificate, made once). Without a process group,
    ``compute()``."""
    if not active():
        return compute()
    return all_gather(compute() if rank() == 0 else None)[0]  # type: ignore[return-value]


_depth = [0]  # nesting of all_or_none: only the outermost one sends a failure


@contextmanager
def all_or_none() -> Iterator[None]:
    """Run a section of a measurement that contains exchanges so that either every rank gets
    through it or every rank raises: a rank that raises inside sends the error in place of its
    next exchange (the others then raise :class:`PeerFailure`) and re-raises its own error.

    Everything a rank does between its first and its last exchange must run inside, and every
    rank must make the same exchanges in the same order. Without a process group it does nothing.
    """
    _depth[0] += 1
    try:
        yield
    except PeerFailure:
        raise
    except Exception as err:
        if active() and _depth[0] == 1:
            try:
                _exchange(_Failure(rank(), f"{type(err).__name__}: {err}"))
            except PeerFailure:
                pass  # this rank's own error is the one to report
        raise
    finally:
        _depth[0] -= 1


def local_module(model: object) -> object:
    """The module a ``DistributedDataParallel`` wrapper holds, else ``model``. A measurement runs
    only forward passes, and a DDP wrapper's forward may broadcast buffers: a collective that
    ranks running different numbers of passes (unequal shards) would not match."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


#: Compared by ``repr`` in :func:`check_same_everywhere`; other objects (an onnxruntime session,
#: whose ``repr`` holds its address) only by their type.
_PLAIN = (str, bytes, int, float, bool, type(None), tuple, list, os.PathLike)


def _digest(part: object) -> str:
    """A hash of a module (its parameters and buffers, by name), a tensor (its bytes, shape and
    dtype) or a plain value (its ``repr``)."""
    h = hashlib.blake2b(digest_size=16)
    items = part.state_dict().items() if isinstance(part, nn.Module) else [("", part)]
    for name, value in items:
        h.update(name.encode())
        if isinstance(value, Tensor):
            t = value.detach().to("cpu").contiguous()
            h.update(repr((tuple(t.shape), t.dtype)).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value if isinstance(value, _PLAIN) else type(value).__qualname__).encode())
    return h.hexdigest()


def check_same_everywhere(what: str, **parts: object) -> None:
    """Raise ``ValueError`` on every rank unless every rank passed the same ``parts`` (tensors
    compared by their bytes, modules by their parameters and buffers, plain values (str, numbers,
    tuples, paths) by ``repr``: pass a tensor as its own part, not inside a tuple; other objects
    by their type only).
    Sharding is only right when each rank holds the same images: a rank that got its own part
    of the data (a ``DistributedSampler``) would measure a shard of a shard. Without a process
    group it does nothing.
    """
    if not active():
        return
    mine = {name: _digest(part) for name, part in parts.items()}
    every = all_gather(mine)
    differ = [name for name in mine if len({d[name] for d in every}) > 1]
    if differ:
        raise ValueError(
            f"{what} under torch.distributed needs the same {', '.join(differ)} on every rank (they differ between "
            f"the {len(every)} ranks): every rank passes all the images and each measures its own shard of them. "
            "Do not split the data per rank yourself (no DistributedSampler), and load the same weights everywhere")
