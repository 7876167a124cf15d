"""What the segmentation tests share: one tiny segmentation study (the quick preset), run once."""

from __future__ import annotations

import pytest

from shiftlab.segmentation.config import SegStudyConfig
from shiftlab.segmentation.runner import run_seg_study


@pytest.fixture(scope="session")
def seg_study(tmp_path_factory):
    """``(run directory, results, [(key, done, total)] of on_job)`` of the quick preset."""
    out = tmp_path_factory.mktemp("seg") / "run"
    done = []
    results = run_seg_study(SegStudyConfig.preset("quick"), out, on_job=lambda key, i, n: done.append((key, i, n)))
    return out, results, done
