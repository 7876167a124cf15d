"""Tests of :func:`shiftlab.measure.invariance`: the metrics of DESIGN section 2, input checks, model state."""

from __future__ import annotations

import copy
import itertools
import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import shiftlab as sl
from shiftlab.measure.invariance import (
    DEGENERATE_MAJORITY_SHARE,
    consistency_from_predictions,
    invariance_compute,
    invariance_stats,
    invariance_update,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# --- models and data --------------------------------------------------------------------------------


class BrightestRow(nn.Module):
    """Predicts (row of the brightest pixel // cell) mod K as one-hot logits: c(T_d x) is known exactly."""

    def __init__(self, k: int, cell: int = 1) -> None:
        super().__init__()
        self.k, self.cell = k, cell
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row = x.sum(dim=1).flatten(1).argmax(dim=1) // x.shape[-1]
        return F.one_hot((row // self.cell) % self.k, self.k).to(x.dtype)


def bright_images(rows_cols, h=9, w=9, seed=0) -> torch.Tensor:
    """Images with background in [0, 0.5) and one pixel of value 1 at each given (row, col)."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.rand(len(rows_cols), 1, h, w, generator=gen, dtype=torch.float64)
    for i, (r, c) in enumerate(rows_cols):
        x[i, 0, r, c] = 1.0
    return x


def random_cnn(seed: int = 0) -> nn.Module:
    """Zero-padded max-pool CNN with an FC head: predictions genuinely change with shifts."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 25, 4)
    ).double().eval()


def random_images(n=6, h=10, w=10, seed=1, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, 1, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def bn_dropout_model() -> nn.Module:
    """Model in training mode with BatchNorm (non-trivial running stats), Dropout and a frozen layer."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
        Poison(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 1, 8, 8) * 3 + 1)  # move the BN running statistics off (0, 1)
    model[0].weight.requires_grad_(False)
    return model.train()


class Poison(nn.Module):
    """Identity, or NaN everywhere when ``active`` (a way to make a measurement fail inside)."""

    active = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * math.nan if self.active else x


def snapshot(model: nn.Module) -> dict:
    return {
        "training": {name: m.training for name, m in model.named_modules()},
        "hooks": {name: (len(m._forward_hooks), len(m._forward_pre_hooks)) for name, m in model.named_modules()},
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
        "state": {name: t.detach().clone() for name, t in model.state_dict(keep_vars=True).items()},
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert all(n == (0, 0) for n in after["hooks"].values()), after["hooks"]
    assert after["requires_grad"] == before["requires_grad"]
    assert before["state"].keys() == after["state"].keys()
    for name, t in before["state"].items():
        assert torch.equal(after["state"][name], t), name  # parameters and BN buffers bitwise


# --- consistency -----------------------------------------------------------------------------------


def test_predictions_are_the_models_top1_on_each_shift():
    net, x = random_cnn(), random_images()
    res = sl.invariance(net, x, shifts=2, keep_predictions=True)
    shifts = res.shifts
    with torch.no_grad():
        for s in (0, 7, 12, 24):
            want = net(sl.shift(x, *shifts[s])).argmax(dim=1)
            assert torch.equal(res.predictions[:, s], want)


def test_consistency_equals_monte_carlo_two_random_shifts():
    net, x = random_cnn(), random_images()
    res = sl.invariance(net, x, shifts=2, keep_predictions=True)
    assert 0.2 < res.consistency < 0.9  # a non-trivial profile, or the comparison means little
    gen = torch.Generator().manual_seed(123)
    m = 40_000
    n, s = res.predictions.shape
    i = torch.randint(n, (m,), generator=gen)
    a, b = torch.randint(s, (m,), generator=gen), torch.randint(s, (m,), generator=gen)
    agree = (res.predictions[i, a] == res.predictions[i, b]).double()
    p = float(agree.mean())
    se = math.sqrt(p * (1 - p) / m)
    assert abs(p - res.consistency) < 4 * se, (p, res.consistency, se)
    # and re-running the model on freshly shifted images for a few random pairs agrees with predictions
    with torch.no_grad():
        for k in range(5):
            ii, aa, bb = int(i[k]), int(a[k]), int(b[k])
            ca = net(sl.shift(x[ii : ii + 1], *res.shifts[aa])).argmax()
            cb = net(sl.shift(x[ii : ii + 1], *res.shifts[bb])).argmax()
            assert bool(ca == cb) == bool(agree[k])


def test_consistency_from_predictions_formula():
    preds = torch.tensor([[0, 0, 1, 2], [3, 3, 3, 3], [0, 1, 2, 3]])
    want = torch.tensor([(2 / 4) ** 2 + 2 * (1 / 4) ** 2, 1.0, 4 * (1 / 4) ** 2], dtype=torch.float64)
    assert torch.allclose(consistency_from_predictions(preds, 4), want, rtol=0, atol=1e-15)


def expected_metrics(rows_cols, labels, shifts, h, k, cell):
    """Every metric of the hand-built BrightestRow model, from the definitions, by brute force."""
    c = [[(((r + dy) % h) // cell) % k for dy, _ in shifts] for r, _ in rows_cols]
    clean = [(r // cell) % k for r, _ in rows_cols]
    n, s = len(rows_cols), len(shifts)
    cons = sum(sum(ci[a] == ci[b] for a in range(s) for b in range(s)) / s**2 for ci in c) / n
    clean_cons = sum(c[i][a] == clean[i] for i in range(n) for a in range(s)) / (n * s)
    steps = [(a, b) for a, b in itertools.product(range(s), repeat=2)
             if (shifts[b][0] - shifts[a][0], shifts[b][1] - shifts[a][1]) in ((1, 0), (0, 1))]
    flip = sum(c[i][a] != c[i][b] for i in range(n) for a, b in steps) / (n * len(steps))
    by_shift = [sum(c[i][a] == labels[i] for i in range(n)) / n for a in range(s)]
    clean_by_shift = [sum(c[i][a] == clean[i] for i in range(n)) / n for a in range(s)]
    worst = sum(all(c[i][a] == labels[i] for a in range(s)) for i in range(n)) / n
    acc = sum(clean[i] == labels[i] for i in range(n)) / n
    e = math.e
    changed = sum(c[i][a] != clean[i] for i in range(n) for a in range(s)) / (n * s)
    prob_change = changed * (e - 1) / (e + k - 1)  # one-hot logits: p = e/(e+K-1) vs 1/(e+K-1)
    return dict(predictions=c, consistency=cons, clean_consistency=clean_cons, flip_rate=flip,
                accuracy_by_shift=by_shift, clean_consistency_by_shift=clean_by_shift, worst_case_accuracy=worst, accuracy=acc,
                mean_accuracy=sum(by_shift) / s, top1_prob_change=prob_change)


def test_all_metrics_hand_checked_on_a_known_model():
    # rows 0..2 -> class 0, 3..5 -> 1, 6..8 -> 2; a 1-row shift changes the class only at cell edges
    h, k, cell = 9, 3, 3
    rows_cols = [(0, 0), (4, 2), (8, 8), (5, 5), (2, 7), (7, 1)]
    labels = [0, 1, 1, 1, 2, 2]
    x = bright_images(rows_cols, h=h)
    res = sl.invariance(BrightestRow(k, cell), x, torch.tensor(labels), shifts=1, keep_predictions=True)
    want = expected_metrics(rows_cols, labels, res.shifts, h, k, cell)
    assert res.predictions.tolist() == want["predictions"]
    assert res.n_classes == k and res.n_images == 6 and len(res.shifts) == 9
    for key in ("consistency", "clean_consistency", "flip_rate", "worst_case_accuracy", "accuracy",
                "mean_accuracy", "top1_prob_change"):
        assert getattr(res, key) == pytest.approx(want[key], abs=1e-12), key
    assert res.accuracy_by_shift == pytest.approx(want["accuracy_by_shift"], abs=1e-12)
    assert res.clean_consistency_by_shift == pytest.approx(want["clean_consistency_by_shift"], abs=1e-12)
    assert 0 < res.consistency < 1 and 0 < res.flip_rate < 1 and 0 < res.worst_case_accuracy < 1


def test_metrics_without_labels_are_none_and_invariant_model_scores_one():
    x = bright_images([(1, 1), (3, 4)])
    res = sl.invariance(BrightestRow(1), x, shifts=2)  # one class: trivially invariant
    assert res.consistency == 1.0 and res.clean_consistency == 1.0 and res.flip_rate == 0.0
    assert res.consistency_sem == 0.0 and res.top1_prob_change == 0.0
    assert res.accuracy is None and res.accuracy_by_shift is None and res.worst_case_accuracy is None


def test_flip_rate_is_none_without_unit_steps():
    res = sl.invariance(BrightestRow(3), bright_images([(1, 1)]), shifts=[(0, 0), (2, 2)])
    assert res.flip_rate is None


# --- degenerate predictions --------------------------------------------------------------------------


class FixedLogits(nn.Module):
    """The same logits for every image (plus ``scale`` times the image mean, so ties cannot arise)."""

    def __init__(self, logits: list[float], scale: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float64))
        self.scale = scale
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.to(x.dtype) + self.scale * x.mean(dim=(1, 2, 3))[:, None]


class FlatRandom(nn.Module):
    """Near-uniform outputs whose argmax still depends on the image: ``1e-3`` times a fixed
    projection of the image (a randomly initialised network in miniature)."""

    def __init__(self, k: int = 4, pixels: int = 81) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(pixels, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1e-3 * x.flatten(1).to(self.w.dtype) @ self.w


def test_constant_classifier_is_flagged_as_trivially_invariant():
    x = bright_images([(1, 1), (3, 4), (6, 2), (8, 8)])
    res = sl.invariance(FixedLogits([0.0, 5.0, 0.0]), x, shifts=1)
    assert res.consistency == 1.0 and res.flip_rate == 0.0  # perfect, and meaningless
    assert res.class_counts == [0, 36, 0] and res.majority_class == 1 and res.majority_class_share == 1.0
    p = math.exp(5) / (math.exp(5) + 2)
    assert res.mean_top1_prob == pytest.approx(p, rel=1e-12)  # confident, so not near-flat
    assert res.degenerate.startswith("100% of the 36 predictions are class 1: a near-constant classifier is "
                                     "trivially invariant")
    assert "near-flat" not in res.degenerate and "--data" in res.degenerate


class OneLogit(nn.Module):
    """A binary classifier with one logit: ``z = w . x`` (class 1 when ``z > 0``); with ``two``,
    the same decision as two logits ``[0, z]``."""

    def __init__(self, h: int = 9, w: int = 9, two: bool = False, bias: float = 0.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.register_buffer("weight", torch.randn(h * w, generator=gen, dtype=torch.float64))
        self.bias, self.two = bias, two
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.flatten(1) @ self.weight.to(x.dtype))[:, None] + self.bias
        return torch.cat([torch.zeros_like(z), z], dim=1) if self.two else z


def test_a_single_logit_classifier_is_decided_by_the_sign_of_its_logit():
    x = bright_images([(1, 1), (3, 4), (6, 2), (8, 8), (4, 4), (0, 7)])
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    one = sl.invariance(OneLogit(), x, labels, shifts=2, keep_predictions=True)
    two = sl.invariance(OneLogit(two=True), x, labels, shifts=2, keep_predictions=True)
    assert one.n_classes == 2 and torch.equal(one.predictions, two.predictions)
    assert 0 < one.consistency < 1 and one.flip_rate > 0  # before: 1.0 and 0, a single class
    for name in ("consistency", "flip_rate", "accuracy", "top1_prob_change", "mean_top1_prob", "class_counts"):
        assert getattr(one, name) == getattr(two, name), name
    z = OneLogit()(x)[:, 0]
    unshifted = [tuple(map(float, d)) for d in one.shifts].index((0.0, 0.0))
    assert one.predictions[:, unshifted].tolist() == (z > 0).long().tolist()  # the decision: logit > 0
    constant = sl.invariance(OneLogit(bias=50.0), x, shifts=1)  # always class 1
    assert constant.degenerate.startswith("100% of the 54 predictions are class 1: a near-constant classifier")


def test_discriminating_model_gets_no_caution():
    rows_cols = [(0, 0), (4, 2), (8, 8), (5, 5), (2, 7), (7, 1)]
    res = sl.invariance(BrightestRow(3, 3), bright_images(rows_cols), shifts=1, keep_predictions=True)
    assert res.degenerate is None
    assert res.class_counts == torch.bincount(res.predictions.flatten(), minlength=3).tolist()
    assert sum(res.class_counts) == 6 * 9
    assert res.majority_class_share == max(res.class_counts) / 54 < DEGENERATE_MAJORITY_SHARE
    assert res.mean_top1_prob == pytest.approx(math.e / (math.e + 2), rel=1e-12)  # one-hot logits


def test_near_flat_outputs_are_flagged_even_when_the_class_varies():
    x = bright_images([(r, c) for r in range(0, 9, 2) for c in range(0, 9, 3)])
    res = sl.invariance(FlatRandom(), x, shifts=1)
    assert res.majority_class_share < 0.9  # the argmax moves with the image
    assert 0.25 < res.mean_top1_prob < 0.25 + 0.05 * 0.75
    assert res.degenerate.startswith("the outputs are near-flat (mean top-1 probability 0.25")
    assert "a uniform guess over 4 classes gives 0.250" in res.degenerate


def test_one_class_labels_excuse_a_near_constant_classifier():
    x = bright_images([(1, 1), (3, 4), (6, 2), (8, 8)])
    model = FixedLogits([9.0, 0.0, 0.0])
    assert sl.invariance(model, x, torch.zeros(4, dtype=torch.long), shifts=1).degenerate is None
    mixed = sl.invariance(model, x, torch.tensor([0, 1, 2, 0]), shifts=1)
    assert mixed.degenerate.startswith("100% of the 36 predictions are class 0")
    assert mixed.accuracy == 0.5


def test_a_model_with_one_output_is_a_binary_classifier_and_a_constant_one_is_flagged():
    res = sl.invariance(BrightestRow(1), bright_images([(1, 1), (3, 4)]), shifts=1)  # the logit is always 1 > 0
    assert res.n_classes == 2 and res.class_counts == [0, 18] and res.majority_class_share == 1.0
    assert res.degenerate.startswith("100% of the 18 predictions are class 1")  # before: one class, no caution


def test_caution_from_merged_statistics_equals_the_whole():
    gen = torch.Generator().manual_seed(0)
    n, s, k = 30, 9, 5
    preds = torch.where(torch.rand(n, s, generator=gen) < 0.95, 2, torch.randint(k, (n, s), generator=gen))
    top1 = 0.2 + 0.01 * torch.rand(n, s, generator=gen, dtype=torch.float64)
    pairs = sl.ShiftSet.grid(1).unit_step_pairs()

    def block(a, b):
        return invariance_update(preds[a:b], preds[a:b, 4], torch.zeros(b - a, s, dtype=torch.float64), n_classes=k,
                                 flip_pairs=pairs, top1_prob=top1[a:b])

    whole = invariance_compute(block(0, n))
    merged = invariance_compute(block(20, 30) + block(0, 7) + block(7, 20))
    assert whole.degenerate is not None and "near-constant" in whole.degenerate and "near-flat" in whole.degenerate
    assert merged.class_counts == whole.class_counts == torch.bincount(preds.flatten(), minlength=k).tolist()
    assert merged.mean_top1_prob == pytest.approx(whole.mean_top1_prob, rel=1e-14)
    assert merged.degenerate == whole.degenerate
    # a block without top-1 probabilities: the mean is unknown, the majority caution remains
    partial = invariance_compute(block(0, 20) + invariance_update(
        preds[20:], preds[20:, 4], torch.zeros(10, s, dtype=torch.float64), n_classes=k, flip_pairs=pairs))
    assert partial.mean_top1_prob is None and partial.class_counts == whole.class_counts
    assert "near-constant" in partial.degenerate and "near-flat" not in partial.degenerate


def test_to_dict_is_json_safe():
    res = sl.invariance(random_cnn(), random_images(), torch.arange(6) % 4, shifts=1, keep_predictions=True)
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["consistency"] == res.consistency and back["shifts"][0] == [-1, -1]
    assert "predictions" not in d
    assert back["class_counts"] == res.class_counts and sum(back["class_counts"]) == 6 * 9
    assert back["majority_class_share"] == res.majority_class_share and back["mean_top1_prob"] == res.mean_top1_prob
    assert "degenerate" in back
    caution = json.loads(json.dumps(sl.invariance(FixedLogits([1.0, 0.0]), random_images(), shifts=1).to_dict()))
    assert caution["degenerate"].startswith("100% of the 54 predictions are class 0")
    full = json.loads(json.dumps(res.to_dict(include_predictions=True), allow_nan=False))
    assert full["predictions"] == res.predictions.tolist()


def test_crop_mode_matches_hand_computation():
    h, ch = 14, 8
    rows_cols = [(5, 6), (8, 5), (6, 8)]
    x = bright_images(rows_cols, h=h, w=h)
    res = sl.invariance(BrightestRow(4), x, shifts=2, mode="crop", crop_size=(ch, ch), keep_predictions=True)
    top0 = (h - ch) // 2
    want = [[(r - (top0 - dy)) % 4 for dy, _ in res.shifts] for r, _ in rows_cols]
    assert res.predictions.tolist() == want
    assert res.mode == "crop"
    with pytest.raises(ValueError, match="needs crop_size"):
        sl.invariance(BrightestRow(4), x, shifts=2, mode="crop")
    with pytest.raises(ValueError, match="leaves the 14x14 image"):
        sl.invariance(BrightestRow(4), x, shifts=4, mode="crop", crop_size=(ch, ch), keep_predictions=True)


def test_batch_size_does_not_change_results():
    net, x = random_cnn(), random_images(5)
    labels = torch.tensor([0, 1, 2, 3, 0])
    ref = sl.invariance(net, x, labels, shifts=1, batch_size=1000, keep_predictions=True)
    for bs in (1, 3, 7):
        res = sl.invariance(net, x, labels, shifts=1, batch_size=bs, keep_predictions=True)
        assert torch.equal(res.predictions, ref.predictions), bs
        got, want = res.to_dict(), ref.to_dict()
        assert (got.pop("batch_size"), want.pop("batch_size")) == (bs, 1000)
        for key, value in want.items():
            assert got[key] == (pytest.approx(value, abs=1e-12) if isinstance(value, float) else value), (bs, key)


@pytest.mark.parametrize("model, size, shifts", [(random_cnn, 10, 2), (lambda: sl.zoo.build(
    "maxpool_gap", num_classes=4, width=4, input_size=8, padding_mode="circular", seed=2).double().eval(),
    8, sl.ShiftSet.full(8, 8))], ids=["exact", "certified"])
def test_statistics_of_parts_add_up_to_the_result_of_the_whole(model, size, shifts):
    net, x, labels = model(), random_images(9, size, size), torch.arange(9) % 4
    whole = sl.invariance(net, x, labels, shifts=shifts)
    parts = [invariance_stats(net, x[a:b], labels[a:b], shifts=shifts) for a, b in ((0, 4), (4, 5), (5, 9))]
    got = invariance_compute(parts[0] + parts[1] + parts[2], sl.as_shift_set(shifts)).to_dict()
    want = whole.to_dict()
    for key in ("batch_size", "device", "certificate", "method"):  # how the call ran, not what it measured
        got.pop(key), want.pop(key)
    assert got.pop("top1_prob_change") == pytest.approx(want.pop("top1_prob_change"), rel=1e-13)
    assert got.pop("mean_top1_prob") == pytest.approx(want.pop("mean_top1_prob"), rel=1e-13)
    assert got == want  # every count, and all computed from counts, exactly
    assert whole.method == ("certified" if isinstance(shifts, sl.ShiftSet) else "exact")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_labels_on_the_gpu_are_compared_with_the_predictions_on_the_cpu():
    net, x, labels = random_cnn(), random_images(4), torch.tensor([0, 1, 2, 3])
    on_gpu = sl.invariance(net.cuda(), x.cuda(), labels.cuda(), shifts=1, keep_predictions=True)
    on_cpu = sl.invariance(net.cpu(), x, labels, shifts=1, keep_predictions=True)
    assert torch.equal(on_gpu.predictions, on_cpu.predictions)
    assert on_gpu.accuracy_by_shift == on_cpu.accuracy_by_shift


def test_images_are_cast_to_the_models_dtype():
    seen = []

    class Record(nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.lin = nn.Linear(1, 3).to(dtype)

        def forward(self, x):
            seen.append(x.dtype)
            return self.lin(x.mean(dim=(1, 2, 3))[:, None])

    sl.invariance(Record(torch.float64).eval(), random_images(3, dtype=torch.float32), shifts=1)
    assert seen and set(seen) == {torch.float64}
    seen.clear()
    sl.invariance(Record(torch.float32).eval(), random_images(3, dtype=torch.float64), shifts=1)
    assert seen and set(seen) == {torch.float32}


def test_progress_is_reported_to_the_end():
    calls = []
    sl.invariance(random_cnn(), random_images(5), shifts=1, batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == list(range(1, len(calls) + 1))


# --- bad input --------------------------------------------------------------------------------------


class ContentDependentClasses(nn.Module):
    """Number of classes depends on the input: 3 when any pixel (0, 0) is non-zero, else 2."""

    def forward(self, x):
        k = 2 + int(bool(x[:, :, 0, 0].abs().sum() > 0))
        return torch.zeros(x.shape[0], k, dtype=x.dtype)


class MapOutput(nn.Module):
    def forward(self, x):
        return x  # a 4-D map, not [N, classes]


class DropsBatch(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:1, :3]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(1, 8, 8)), ValueError, r"4-D \[N, C, H, W\].*unsqueeze"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 1, 8, 8)), ValueError, r"must be 4-D"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 8, 8, dtype=torch.uint8)), TypeError, "must be floating point"),
        (lambda: sl.invariance(BrightestRow(2), [[0.0]]), TypeError, "must be a torch.Tensor"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(0, 1, 8, 8)), ValueError, r"is empty \(N = 0\)"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 8, 8), shifts=[]), ValueError, "shift set is empty"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 8, 8), shifts=8), ValueError, "too large for 8x8 images"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long)), ValueError,
         "got 3 labels for 4 images"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 8, 8), torch.zeros(2)), TypeError, "integer class indices"),
        (lambda: sl.invariance(MapOutput().eval(), torch.zeros(2, 1, 8, 8)), ValueError,
         r"output is one tensor \[N, classes\]; got a tensor of shape \(N, 1, 8, 8\)"),
        (lambda: sl.invariance(DropsBatch().eval(), torch.zeros(2, 1, 8, 8)), ValueError,
         r"output is one tensor \[N, classes\]; got a tensor of shape \(1, 3\), whose first dimension is not the images"),
        (lambda: sl.invariance(BrightestRow(2), torch.zeros(2, 1, 8, 8), batch_size=0), ValueError,
         "batch_size must be an int >= 1 or 'auto', got 0"),
    ],
    ids=["3d", "5d", "uint8", "list", "empty", "no-shifts", "shift-too-large", "labels-length", "float-labels",
         "map-output", "batch-dropped", "batch-size-0"],
)
def test_bad_input_raises_with_message(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_images_rejected(bad):
    x = torch.zeros(3, 1, 8, 8)
    x[1, 0, 2, 2] = bad
    with pytest.raises(ValueError, match=r"contain NaN or Inf values in 1 image\(s\)"):
        sl.invariance(BrightestRow(2), x)


def test_nan_model_output_rejected():
    class NaNOut(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 3), math.nan)

    with pytest.raises(ValueError, match="produced NaN or Inf outputs"):
        sl.invariance(NaNOut().eval(), torch.zeros(2, 1, 8, 8))


def test_output_shape_depending_on_the_shift_rejected():
    x = torch.zeros(2, 1, 8, 8)
    x[:, 0, 1, 1] = 1.0  # the clean pass sees 2 classes; shift (-1, -1) moves the pixel to (0, 0): 3
    with pytest.raises(ValueError, match="output shape depends on the input: 2 classes for one batch, 3 for another"):
        sl.invariance(ContentDependentClasses().eval(), x, shifts=1, batch_size=2)  # a pass per shift


def test_output_shape_depending_on_the_batch_content_rejected():
    x = torch.zeros(4, 1, 8, 8)
    x[2, 0, 0, 0] = 1.0  # the second clean batch (images 2, 3) has 3 classes, the first 2
    with pytest.raises(ValueError, match="output shape depends on the input: 2 classes for one batch, 3 for another"):
        sl.invariance(ContentDependentClasses().eval(), x, shifts=[(0, 0)], batch_size=2)


# --- model state ------------------------------------------------------------------------------------


def test_training_model_warns_measures_in_eval_and_is_restored():
    model = bn_dropout_model()
    before = snapshot(model)
    eval_copy = copy.deepcopy(model).eval()
    x = random_images(4, 8, 8)
    with pytest.warns(UserWarning, match="model is in training mode"):
        res = sl.invariance(model, x, torch.tensor([0, 1, 2, 0]), shifts=1, keep_predictions=True)
    assert_unchanged(model, before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an eval-mode model gives no warning
        ref = sl.invariance(eval_copy, x, torch.tensor([0, 1, 2, 0]), shifts=1, keep_predictions=True)
    assert torch.equal(res.predictions, ref.predictions)
    assert res.to_dict() == ref.to_dict()


@pytest.mark.parametrize("failure", ["nan-inside", "wrong-labels", "too-large-shift", "shape-change"])
def test_model_restored_after_a_call_that_raises(failure):
    model = bn_dropout_model()
    x = random_images(4, 8, 8)
    labels = torch.tensor([0, 1, 2, 0])
    kwargs = {}
    if failure == "nan-inside":
        model[4].active = True
    elif failure == "wrong-labels":
        labels = labels[:3]
    elif failure == "too-large-shift":
        kwargs["shifts"] = 9
    else:
        model[6], model[7] = nn.Identity(), nn.Identity()  # the model now returns a 4-D map [N, 4, 1, 1]
    before = snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError):
            sl.invariance(model, x, labels, **kwargs)
    assert_unchanged(model, before)


@pytest.mark.parametrize("bad", [99, -1])
def test_labels_outside_the_models_classes_are_refused(bad):
    labels = torch.tensor([0, 1, bad, 2, 0, 1])
    with pytest.raises(ValueError, match=f"labels hold class {bad} but the model outputs 4 classes \\(0..3\\)"):
        sl.invariance(random_cnn(), random_images(), labels, shifts=1)
