"""Checks that two metrics' states add up before :meth:`torchmetrics.Metric.merge_state` adds them
(``docs/reliability.md``): one message shape for every metric of :mod:`shiftlab.metrics`."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor
from torchmetrics import Metric

from shiftlab.measure.shiftsets import ShiftSet

__all__ = ["check_same_arguments", "check_same_shifts", "check_state_shapes", "refusal"]


def refusal(metric: Metric) -> str:
    """The start of every merge refusal of ``metric``."""
    return f"cannot merge the state of another {type(metric).__name__}: "


def check_same_arguments(metric: Metric, pairs: Iterable[tuple[str, object, object]]) -> None:
    """``ValueError`` naming the first ``(what, mine, theirs)`` that differs."""
    for what, mine, theirs in pairs:
        if mine != theirs:
            raise ValueError(f"{refusal(metric)}{what} {mine!r} here, {theirs!r} in the other; merge only metrics built "
                             "with the same arguments")


def check_same_shifts(metric: Metric, mine: ShiftSet, theirs: ShiftSet) -> None:
    """``ValueError`` when the two shift sets differ."""
    if mine.as_tuples() != theirs.as_tuples():
        raise ValueError(f"{refusal(metric)}{len(mine)} shifts here, {len(theirs)} in the other (other shift sets); "
                         "merge only metrics built with the same shifts")


def check_state_shapes(metric: Metric, incoming: dict[str, object], likely: str) -> None:
    """``ValueError`` when a state of ``incoming`` is not a tensor of ``metric``'s shape for it;
    ``likely``: what such a difference usually means (e.g. "other shift sets or class counts")."""
    for name, value in incoming.items():
        mine = getattr(metric, name, None)
        if name in metric._defaults and isinstance(mine, Tensor) and (
                not isinstance(value, Tensor) or value.shape != mine.shape):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{refusal(metric)}its state {name!r} is {got}, here {tuple(mine.shape)} ({likely}); "
                             "merge only metrics built with the same arguments")
