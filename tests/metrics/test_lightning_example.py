"""examples/lightning_metrics.py: a real LightningModule logs shiftlab.metrics, and what it logs is
what the functional engine gives for the validation images and the trained model."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

import shiftlab as sl

pytest.importorskip("torchmetrics", reason="the example needs torchmetrics (pip install torchmetrics)")
pytest.importorskip("lightning", reason="the example needs lightning (pip install lightning)")

EXAMPLE = Path(__file__).parents[2] / "examples" / "lightning_metrics.py"
pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_lightning_example_logs_the_numbers_of_the_engine(tmp_path):
    module, val, logged = runpy.run_path(str(EXAMPLE))["run"](str(tmp_path))
    model = module.model.eval()
    inv = sl.invariance(model, val.images, val.labels, shifts=2)
    assert inv.degenerate is None and 0.7 < inv.accuracy  # trained: the numbers mean something
    for name, value in (("consistency", inv.consistency), ("flip_rate", inv.flip_rate),
                        ("worst_case_accuracy", inv.worst_case_accuracy)):
        assert logged[f"val/{name}"] == pytest.approx(value, rel=1e-6), name
    eq = sl.equivariance(model, val.images, shifts=1)
    unaligned = {f"val/eq/{layer.name}/unaligned_error": layer.unaligned_error
                 for layer in eq.layers if layer.unaligned_error is not None}
    assert unaligned and {k: v for k, v in logged.items() if k.startswith("val/eq/")} == pytest.approx(unaligned, rel=1e-6)
    assert list(tmp_path.glob("lightning_logs/version_*/metrics.csv"))  # the CSV logger wrote them
