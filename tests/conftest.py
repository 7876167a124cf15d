"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import resource
import signal

import pytest
import torch

#: --doctest-modules would import every conftest.py as a module named ``conftest``; two of them in
#: one run (tests/report and tests/training) then collide. They hold fixtures, not doctests.
collect_ignore_glob = ["*/conftest.py"]


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is far faster than two on a shared, busy CPU.

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the thread count is restored after the module.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def full_disk():
    """``full_disk(max_bytes)``: a ``preexec_fn`` for a child process whose files cannot grow
    beyond ``max_bytes``. Its writes then fail with EFBIG ("File too large") as they fail with
    ENOSPC on a full disk: the same code path, an ``OSError`` from ``write``."""

    def limited(max_bytes: int):
        def apply() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a killed process
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

        return apply

    return limited


@pytest.fixture(scope="session")
def seg_study(tmp_path_factory):
    """One tiny segmentation study (the quick preset), run once: ``(run directory, results,
    [(key, done, total)] of on_job)``."""
    from shiftlab.segmentation import SegStudyConfig, run_seg_study

    out = tmp_path_factory.mktemp("seg") / "run"
    done = []
    results = run_seg_study(SegStudyConfig.preset("quick"), out, on_job=lambda key, i, n: done.append((key, i, n)))
    return out, results, done
