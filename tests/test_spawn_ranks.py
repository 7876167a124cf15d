"""The test harness for process groups (tests/spawn_ranks.py): results come back in rank order,
a rank that crashes before the final barrier fails the run with its signal, and one that crashes
while leaving the group (after every result is saved) keeps the results with a warning."""

from __future__ import annotations

import atexit
import os

import pytest
import torch.distributed as dist

from spawn_ranks import run_ranks


def _rank_times(factor: int) -> int:
    return dist.get_rank() * factor


def _abort_on_rank1_now() -> int:
    if dist.get_rank() == 1:
        os.abort()
    return dist.get_rank()


def _abort_on_rank1_at_exit() -> int:
    if dist.get_rank() == 1:
        atexit.register(os.abort)  # runs after destroy_process_group, as the interpreter exits
    return dist.get_rank() * 10


def test_results_come_back_in_rank_order():
    assert run_ranks(_rank_times, 7, timeout=60) == [0, 7]


def test_a_crash_before_the_barrier_fails_the_run():
    with pytest.raises(RuntimeError, match=r"rank 1 died \(process 1 terminated with signal SIGABRT\) before"):
        run_ranks(_abort_on_rank1_now, timeout=60)


def test_a_crash_while_leaving_the_group_keeps_the_results_with_a_warning():
    with pytest.warns(RuntimeWarning, match="rank 1 died .* after the final barrier"):
        assert run_ranks(_abort_on_rank1_at_exit, timeout=60) == [0, 10]
