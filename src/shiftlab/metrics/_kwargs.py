"""torchmetrics' own keyword arguments, typed for the ``**kwargs`` of the metrics of
:mod:`shiftlab.metrics` (``**kwargs: Unpack[MetricKwargs]``): a type checker then refuses a
misspelt or mistyped one, and an IDE completes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from torch import Tensor

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

__all__ = ["MetricKwargs"]


class MetricKwargs(TypedDict, total=False):
    """The keyword arguments that :class:`torchmetrics.Metric` takes (torchmetrics' "Metric
    kwargs"; each optional, torchmetrics' default when left out)."""

    #: Keep list states on the CPU between updates (the states here are tensors: no effect).
    compute_on_cpu: bool
    #: Synchronise the states across processes at each ``forward`` too, not only in ``compute``.
    dist_sync_on_step: bool
    #: The processes to synchronise across; ``None``: all of them.
    process_group: ProcessGroup | None
    #: ``fn(state, group=...) -> [state of each process]``, in place of ``torch.distributed``'s all-gather.
    dist_sync_fn: Callable[..., list[Tensor]] | None
    #: Whether processes are there to synchronise across (default: ``torch.distributed`` is initialised).
    distributed_available_fn: Callable[[], bool] | None
    #: Synchronise the states across processes in ``compute`` (default ``True``).
    sync_on_compute: bool
    #: Cache ``compute``'s value until the next ``update`` (default ``True``).
    compute_with_cache: bool
