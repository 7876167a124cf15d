"""What a study's jobs cost, and how they are split over the ranks of a distributed run
(``docs/study.md``, "Running under torchrun").

A job's cost is the multiply-adds of one forward pass of its model times its epoch budget. The
split is greedy longest-processing-time: jobs in decreasing cost, each to the rank with the least
cost so far. It depends only on the costs and the number of ranks, so every rank computes the same
split on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from shiftlab.study.conditions import condition
from shiftlab.study.config import StudyConfig
from shiftlab.study.job import Job, job_macs

__all__ = ["assign", "job_cost"]


def job_cost(config: StudyConfig, job: Job, canvas: tuple[int, int], in_channels: int = 1, n_classes: int = 10) -> int:
    """Multiply-adds of one forward pass of ``job``'s model on a ``canvas`` input times its epoch
    budget (``probe_epochs`` for the position probe, else ``max_epochs``)."""
    epochs = config.probe_epochs if condition(job.condition).probe else config.max_epochs
    return job_macs(job.model, job.width_in(config), tuple(canvas), in_channels, n_classes) * epochs


def assign(costs: Sequence[float], n_ranks: int) -> list[list[int]]:
    """Split items of ``costs`` over ``n_ranks`` ranks: the indices each rank runs, costliest first.

    Items go in decreasing cost (ties: in their order) to the rank with the least cost so far
    (ties: the lowest rank), so the ranks' totals differ by at most the costliest item.

    >>> assign([3, 5, 1, 4, 3], 2)
    [[1, 4], [3, 0, 2]]
    >>> assign([2, 2], 3)
    [[0], [1], []]
    """
    if n_ranks < 1:
        raise ValueError(f"n_ranks must be >= 1, got {n_ranks}")
    loads = [0.0] * n_ranks
    shares: list[list[int]] = [[] for _ in range(n_ranks)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        rank = min(range(n_ranks), key=lambda r: (loads[r], r))
        shares[rank].append(i)
        loads[rank] += costs[i]
    return shares
