"""Per-layer equivariance as statistics that add up (``EquivarianceStats``, ``equivariance_compute``):
parts of the images add to the whole, and under a real 2-process gloo group each rank measures
its shard and every rank gets the numbers of one process (torch and ONNX models)."""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure.equivariance import EquivarianceStats, equivariance_compute, equivariance_stats
from spawn_ranks import run_ranks

pytestmark = pytest.mark.usefixtures("one_thread")


def dense_model() -> nn.Module:
    """Zero padding, a max-pool and a dense output: boundary, aliasing and an EQ-T to add up."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 2, 3, padding=1)).double().eval()


def images(n: int, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def assert_close(da: dict, db: dict, rel: float) -> None:
    """Two results' ``to_dict()``: every layer's numbers to ``rel`` (sums added in another
    grouping), names, shapes and labels exactly."""
    for key in ("mode", "shift_set", "shifts", "input_shape", "n_images", "skipped", "resolution_jumps"):
        assert da[key] == db[key], key
    assert (da["output_eq_t_db"] is None) == (db["output_eq_t_db"] is None)
    if da["output_eq_t_db"] is not None:
        assert da["output_eq_t_db"] == pytest.approx(db["output_eq_t_db"], rel=rel)
    for la, lb in zip(da["layers"], db["layers"], strict=True):
        for key, value in lb.items():
            if isinstance(value, float):
                assert la[key] == pytest.approx(value, rel=rel, abs=1e-300), (la["name"], key)
            elif isinstance(value, list) and value and isinstance(value[0], (float, type(None))):
                assert la[key] == pytest.approx(value, rel=rel, abs=1e-300), (la["name"], key)
            else:
                assert la[key] == value, (la["name"], key)


def test_statistics_of_parts_add_up_to_the_whole_in_any_order():
    model, x = dense_model(), images(7)
    kwargs = dict(shifts=[(0, 0), (1, 0), (2, 2), (0.5, -1)], mode="zeros")
    whole = sl.equivariance(model, x, **kwargs)
    parts = [equivariance_stats(model, x[a:b], **kwargs) for a, b in ((0, 3), (3, 4), (4, 7))]
    assert all(isinstance(p, EquivarianceStats) for p in parts) and [p.n_images for p in parts] == [3, 1, 3]
    for total in (parts[0] + parts[1] + parts[2], parts[2] + (parts[0] + parts[1])):
        assert_close(equivariance_compute(total).to_dict(), whole.to_dict(), rel=1e-12)
    assert whole.output_eq_t_db is not None and whole.first_break(1e-6) is not None  # something to add up
    assert [layer.name for layer in equivariance_compute(parts[2] + parts[0]).layers] == [layer.name for layer in whole.layers]


def test_statistics_of_different_measurements_do_not_add():
    model, x = dense_model(), images(2)
    a = equivariance_stats(model, x, shifts=1)
    for other in (equivariance_stats(model, x, shifts=2), equivariance_stats(model, x, shifts=1, mode="zeros"),
                  equivariance_stats(model, images(2, 16), shifts=1)):
        with pytest.raises(ValueError, match="cannot add equivariance statistics of different measurements"):
            a + other


# --- torch.distributed -------------------------------------------------------------------------------


def measure(case: str, onnx_path: str | None) -> sl.EquivarianceResult:
    model = onnx_path if case == "onnx" else dense_model()
    x = images({"n7": 7, "n1": 1, "onnx": 5}[case])
    x = x.float() if case == "onnx" else x
    return sl.equivariance(model, x, shifts=[(0, 0), (1, 0), (2, 2), (0.5, -1)], mode="zeros", batch_size=6)


def _every_case(onnx_path: str | None) -> dict:
    """What every rank of the group computes."""
    cases = ["n7", "n1"] + (["onnx"] if onnx_path else [])
    return {case: measure(case, onnx_path).to_dict() for case in cases}


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory) -> str | None:
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        return None  # the torch cases still run
    path = tmp_path_factory.mktemp("onnx") / "dense.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(dense_model().float(), (torch.zeros(2, 1, 12, 12),), str(path), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    return str(path)


def test_two_processes_give_the_numbers_of_one(onnx_file):
    ranks = run_ranks(_every_case, onnx_file, world=2)
    assert ranks[0] == ranks[1]  # every rank returns the same result, bitwise
    assert set(ranks[0]) == {"n7", "n1"} | ({"onnx"} if onnx_file else set())
    for case, two in ranks[0].items():  # n1: rank 1 has no image and still takes part
        one = measure(case, onnx_file).to_dict()
        assert two["batch_size"] == one["batch_size"] == 6
        assert_close(two, one, rel=1e-12)
