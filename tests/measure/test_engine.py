"""The measurement engine: the same numbers as 0.1.0's invariance (all fields), for any batch
size and any merge order of the sufficient statistics; no wasted forward passes; devices."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from legacy_invariance import legacy_invariance
from test_invariance import BrightestRow, bright_images, random_cnn, random_images
from torch import nn

import shiftlab as sl
from shiftlab.measure.driver import MAX_AUTO_BATCH, auto_batch_size
from shiftlab.measure.invariance import InvarianceStats, invariance_compute, invariance_update
from shiftlab.measure.runner import TorchRunner, resolve_device
from shiftlab.measure.shiftsets import ShiftSet

pytestmark = pytest.mark.usefixtures("one_thread")

FLOAT_FIELDS = ("consistency", "consistency_sem", "clean_consistency", "top1_prob_change", "flip_rate", "accuracy",
                "mean_accuracy", "worst_case_accuracy")
ENGINE_ONLY = ("method", "batch_size", "device", "certificate")
# the caution on degenerate predictions (docs/definitions.md, "Degenerate predictions") is newer than 0.1.0
CAUTION = ("class_counts", "majority_class", "majority_class_share", "mean_top1_prob", "degenerate")


def assert_same(new: sl.InvarianceResult, old: sl.InvarianceResult, tol: float = 1e-15) -> None:
    """Every field of 0.1.0's result: integers and lists exactly, floats to ``tol`` (the engine sums
    counts as integers where 0.1.0 averaged floats, so the last bit may differ)."""
    a, b = new.to_dict(include_predictions=True), old.to_dict(include_predictions=True)
    for key in ENGINE_ONLY + CAUTION:
        a.pop(key), b.pop(key)
    assert new.class_counts == torch.bincount(old.predictions.flatten(), minlength=old.n_classes).tolist()
    assert a.keys() == b.keys()
    for key, value in b.items():
        if key in FLOAT_FIELDS and value is not None:
            assert a[key] == pytest.approx(value, rel=tol, abs=tol), key
        elif isinstance(value, list) and value and isinstance(value[0], float):
            assert a[key] == pytest.approx(value, rel=tol, abs=tol), key
        else:
            assert a[key] == value, key


def zoo_model() -> nn.Module:
    return sl.zoo.build("maxpool_gap", num_classes=10, width=4, input_size=24, seed=3).double().eval()


CASES = {
    "random-cnn-circular": lambda: (random_cnn(), random_images(7), torch.arange(7) % 4, dict(shifts=2)),
    "random-cnn-zeros-no-zero-shift": lambda: (random_cnn(), random_images(5), None,
                                               dict(shifts=[(1, 0), (0, 1), (2, 3), (-1, -2)], mode="zeros")),
    "random-cnn-fourier-fractional": lambda: (random_cnn(), random_images(4), torch.arange(4),
                                              dict(shifts=[(0, 0), (0.5, 0), (0, -1.5), (1, 1)], mode="fourier")),
    "brightest-row-crop": lambda: (BrightestRow(4), bright_images([(5, 6), (8, 5), (6, 8)], h=14, w=14),
                                   torch.tensor([0, 1, 2]), dict(shifts=2, mode="crop", crop_size=(8, 8))),
    "zoo-maxpool-gap": lambda: (zoo_model(), random_images(6, 24, 24), torch.arange(6), dict(shifts=3, mode="zeros")),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch_size", [1, 5, 64, 1000])
def test_engine_gives_the_numbers_of_0_1_0_for_any_batch_size(case, batch_size):
    model, x, labels, kwargs = CASES[case]()
    old = legacy_invariance(model, x, labels, batch_size=256, **kwargs)
    new = sl.invariance(model, x, labels, batch_size=batch_size, keep_predictions=True, **kwargs)
    assert_same(new, old)
    assert new.batch_size == batch_size and new.method == "exact" and new.device == "cpu"


def _block_stats(preds, clean, change, labels, pairs, start):
    return invariance_update(preds, clean, change, n_classes=5, flip_pairs=pairs, labels=labels,
                             keep_predictions=True, first_index=start)


def test_statistics_merged_in_any_order_equal_the_whole():
    gen = torch.Generator().manual_seed(0)
    shift_set = ShiftSet.grid(2)
    pairs = shift_set.unit_step_pairs()
    n, s = 40, len(shift_set)
    preds = torch.randint(5, (n, s), generator=gen)
    clean = preds[:, s // 2]
    change = torch.rand(n, s, generator=gen, dtype=torch.float64)
    labels = torch.randint(5, (n,), generator=gen)
    whole = invariance_compute(_block_stats(preds, clean, change, labels, pairs, 0), shift_set)
    bounds = [0, 3, 4, 17, 30, 40]
    blocks = [_block_stats(preds[a:b], clean[a:b], change[a:b], labels[a:b], pairs, a)
              for a, b in itertools.pairwise(bounds)]
    for seed in range(5):
        random.Random(seed).shuffle(blocks)
        total = blocks[0]
        for b in blocks[1:]:
            total = total + b
        merged = invariance_compute(total, shift_set)
        assert torch.equal(merged.predictions, preds)
        d_merged, d_whole = merged.to_dict(), whole.to_dict()
        # counts are integers: exact in any order; the probability change is a float sum
        assert d_merged.pop("top1_prob_change") == pytest.approx(d_whole.pop("top1_prob_change"), rel=1e-14)
        assert d_merged == d_whole


def test_statistics_of_different_measurements_do_not_add():
    a = InvarianceStats(n_shifts=9, n_classes=5)
    with pytest.raises(ValueError, match="9 vs 4 shifts"):
        a + InvarianceStats(n_shifts=4, n_classes=5)
    with pytest.raises(ValueError, match="no images were measured"):
        invariance_compute(a)


class Counting(nn.Module):
    """Wraps a model and counts forward passes and the images they carried."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.passes, self.images = model, 0, 0

    def forward(self, x):
        self.passes, self.images = self.passes + 1, self.images + x.shape[0]
        return self.model(x)


@pytest.mark.parametrize("batch_size", [4, 25, 500])
def test_the_zero_shift_is_the_clean_pass_and_no_pass_is_wasted(batch_size):
    x = random_images(10)
    counted = Counting(random_cnn()).eval()
    res = sl.invariance(counted, x, shifts=2, batch_size=batch_size, certify=False)  # (0, 0) in the set
    assert counted.images == 10 * 25  # one pass per image and shift, no separate clean pass
    assert res.clean_consistency_by_shift[12] == 1.0  # shift (0, 0) agrees with itself
    counted.passes = counted.images = 0
    sl.invariance(counted, x, shifts=[(1, 0), (0, 1)], batch_size=batch_size, certify=False)
    assert counted.images == 10 * 3  # without (0, 0): one clean image each, riding in a chunk


def test_device_cpu_explicit_and_auto_and_errors():
    model, x = random_cnn(), random_images(3)
    ref = sl.invariance(model, x, shifts=1)
    for device in ("cpu", torch.device("cpu"), "auto" if not torch.cuda.is_available() else "cpu"):
        res = sl.invariance(model, x, shifts=1, device=device)
        assert res.device == "cpu" and res.consistency == ref.consistency
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        sl.invariance(model, x, shifts=1, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            resolve_device("cuda", model)
    assert resolve_device(None, model) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_predictions_and_leaves_the_model_on_the_cpu():
    model, x = random_cnn(), random_images(6)
    cpu = sl.invariance(model, x, shifts=2, keep_predictions=True)
    gpu = sl.invariance(model, x, shifts=2, keep_predictions=True, device="cuda")
    assert gpu.device.startswith("cuda") and next(model.parameters()).device.type == "cpu"
    assert torch.equal(gpu.predictions, cpu.predictions)  # float64: the same classes
    assert gpu.consistency == cpu.consistency


def test_auto_batch_size_is_reported_bounded_and_changes_nothing():
    model, x = zoo_model(), random_images(6, 24, 24)
    res = sl.invariance(model, x, shifts=2, batch_size="auto", keep_predictions=True)
    assert 1 <= res.batch_size <= MAX_AUTO_BATCH["cpu"]
    ref = sl.invariance(model, x, shifts=2, batch_size=7, keep_predictions=True)
    assert torch.equal(res.predictions, ref.predictions) and res.consistency == ref.consistency



def test_auto_batch_size_follows_free_memory_and_activations(monkeypatch):
    import shiftlab.measure.driver as driver

    model, x = zoo_model(), random_images(1, 24, 24)
    runner = TorchRunner(model, "cpu")
    with runner.session():
        per_image = runner.bytes_per_image(x)
        # the input plus every leaf's output: at least the first conv's map, 4 x 24 x 24 float64
        assert per_image >= (24 * 24 + 4 * 24 * 24) * 8
        monkeypatch.setattr(driver, "_free_bytes", lambda device: 40 * per_image)
        assert auto_batch_size(runner, x) == 10  # a quarter of the free memory
        monkeypatch.setattr(driver, "_free_bytes", lambda device: per_image)
        assert auto_batch_size(runner, x) == 1  # never below one image
        monkeypatch.setattr(driver, "_free_bytes", lambda device: 1 << 50)
        assert auto_batch_size(runner, x) == MAX_AUTO_BATCH["cpu"]


def test_torch_runner_session_moves_nothing_on_the_cpu_and_restores_modes():
    model = zoo_model().train()
    runner = TorchRunner(model)
    assert runner.device == torch.device("cpu") and runner.dtype == torch.float64
    with pytest.warns(UserWarning, match="training mode"):
        with runner.session():
            assert not model.training and torch.is_inference_mode_enabled()
            assert runner(random_images(2, 24, 24)).shape == (2, 10)
    assert model.training and not torch.is_inference_mode_enabled()
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        TorchRunner(lambda x: x)


@pytest.mark.parametrize("call", [
    lambda f: sl.invariance(f, random_images(2)), lambda f: sl.equivariance(f, random_images(2)),
    lambda f: sl.check_equivariant(f, (1, 8, 8)), lambda f: sl.check_invariant(f, (1, 8, 8)),
], ids=["invariance", "equivariance", "check_equivariant", "check_invariant"])
def test_a_plain_function_is_refused_with_the_fix(call):
    with pytest.raises(TypeError, match="must be a torch.nn.Module, got function; wrap a function in a module"):
        call(lambda x: x)


@pytest.mark.parametrize("call", [
    lambda: sl.invariance(random_cnn(), random_images(2, 8, 8), shifts=999),
    lambda: sl.equivariance(random_cnn(), random_images(2, 8, 8), shifts=999),
    lambda: sl.check_invariant(torch.nn.Identity(), (1, 8, 8), shifts=999),
])
def test_an_int_range_too_large_for_the_images_fails_before_the_set_is_built(call):
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"a shift of \(999, 999\) px is too large for 8x8 images"):
        call()
    assert time.perf_counter() - start < 0.5  # 3,996,001 shifts were never built
