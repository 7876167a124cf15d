"""Per-epoch random streams derived from the run seed.

Each epoch gets its own seeds, derived from ``(seed, epoch)`` alone with
:class:`numpy.random.SeedSequence` (no collisions between e.g. seed 0 epoch 1000 and seed 1
epoch 0, as ``seed * 1000 + epoch`` would have). Because epoch ``k`` never depends on the random
state left behind by epoch ``k - 1``, a run resumed at epoch ``k`` draws exactly what the
uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """Return ``(data_seed, model_seed)`` for a 1-based ``epoch`` of a run seeded with ``seed``.

    ``data_seed`` drives shuffling and augmentation; ``model_seed`` drives random layers inside
    the model (dropout), which draw from the global generator.
    """
    data_seed, model_seed = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint64)
    return int(data_seed), int(model_seed)


def data_generator(seed: int) -> torch.Generator:
    """Return a fresh CPU generator seeded with ``seed``."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed the global CPU generator for the block and restore the caller's state afterwards.

    Modules such as ``nn.Dropout`` draw from the global generator; this makes them reproducible
    per epoch without consuming or disturbing the caller's random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
