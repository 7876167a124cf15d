"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is far faster than two on a shared, busy CPU.

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the thread count is restored after the module.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
