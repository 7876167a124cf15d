"""Per-epoch random streams: distinct per (seed, epoch), a pure function of them."""

from __future__ import annotations

import torch

from shiftlab.training._rng import epoch_seeds, seeded_global_rng


def test_epoch_seeds_are_distinct_and_reproducible():
    seeds = {epoch_seeds(seed, epoch) for seed in range(3) for epoch in range(1, 1002)}
    assert len(seeds) == 3 * 1001  # no seed * 1000 + epoch style collisions
    assert epoch_seeds(5, 2) == epoch_seeds(5, 2)
    data_seed, model_seed = epoch_seeds(5, 2)
    assert data_seed != model_seed


def test_seeded_global_rng_is_reproducible_and_restores_the_caller_state():
    before = torch.get_rng_state()
    with seeded_global_rng(123):
        first = torch.rand(3)
    with seeded_global_rng(123):
        second = torch.rand(3)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), before)
