"""shiftlab.metrics (docs/metrics.md): real torchmetrics metrics give the functional engine's numbers
over batches, after merge_state, forward, reset and a real 2-process gloo sync; they never hold
the user's model and leave it exactly as it was, even when an update raises."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure import distributed
from spawn_ranks import run_ranks

torchmetrics = pytest.importorskip("torchmetrics", reason="shiftlab.metrics needs torchmetrics (pip install torchmetrics)")
from shiftlab.metrics import (  # noqa: E402 (imported once the importorskip above passed)
    AccuracyByShift,
    CleanConsistency,
    FlipRate,
    LayerEquivarianceError,
    ShiftConsistency,
    ShiftInvariance,
    WorstCaseAccuracy,
)

pytestmark = pytest.mark.usefixtures("one_thread")

K = 4
SHIFTS = 2
#: Float sums (added in another grouping than the functional run's blocks): equal to rounding.
FLOAT_SUMS = ("top1_prob_change", "mean_top1_prob")
SCALARS = {ShiftConsistency: "consistency", CleanConsistency: "clean_consistency", FlipRate: "flip_rate",
           WorstCaseAccuracy: "worst_case_accuracy", AccuracyByShift: "accuracy_by_shift"}


def cnn(seed: int = 0) -> nn.Module:
    """Zero-padded max-pool CNN with an FC head: its predictions change with shifts."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 25, K)).double().eval()


def data(n: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 10, 10, generator=gen, dtype=torch.float64), torch.randint(K, (n,), generator=gen)


SPLITS = [(0, 5), (5, 6), (6, 12)]  # uneven batches, one of a single image


def updated(metric, model, x, y, splits=SPLITS):
    for lo, hi in splits:
        metric.update(model, x[lo:hi], None if y is None else y[lo:hi])
    return metric


def assert_same_result(got: sl.InvarianceResult | dict, want: sl.InvarianceResult) -> None:
    """Every field: counts and everything computed from them exactly; float sums to 1e-12."""
    a, b = dict(got if isinstance(got, dict) else got.to_dict()), want.to_dict()
    for key in ("batch_size", "device", "certificate", "method"):  # how the functional run ran
        a.pop(key), b.pop(key)
    for key in FLOAT_SUMS:
        assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12, abs=0), key
    assert a == b


def test_shift_invariance_over_batches_is_the_functional_result():
    model, (x, y) = cnn(), data()
    want = sl.invariance(model, x, y, shifts=SHIFTS)
    assert 0.2 < want.consistency < 0.95 and 0 < want.flip_rate < 1  # a profile worth comparing
    assert_same_result(updated(ShiftInvariance(K, SHIFTS), model, x, y).compute(), want)
    unlabelled = updated(ShiftInvariance(K, SHIFTS), model, x, None).compute()
    assert_same_result(unlabelled, sl.invariance(model, x, shifts=SHIFTS))
    assert unlabelled.accuracy is None and unlabelled.worst_case_accuracy is None


@pytest.mark.parametrize("cls", list(SCALARS))
def test_each_metric_over_batches_is_the_functional_value(cls):
    model, (x, y) = cnn(), data()
    value = updated(cls(K, SHIFTS), model, x, y).compute()
    want = getattr(sl.invariance(model, x, y, shifts=SHIFTS), SCALARS[cls])
    assert value.dtype == torch.float64 and value.tolist() == want  # integer counts, then one division: exact


def test_merge_state_gives_the_result_of_all_images():
    model, (x, y) = cnn(), data()
    a, b = updated(ShiftInvariance(K, SHIFTS), model, x, y, [(0, 7)]), updated(ShiftInvariance(K, SHIFTS), model, x, y,
                                                                             [(7, 12)])
    a.merge_state(b)
    assert_same_result(a.compute(), sl.invariance(model, x, y, shifts=SHIFTS))
    c, d = WorstCaseAccuracy(K, SHIFTS), WorstCaseAccuracy(K, SHIFTS)
    updated(c, model, x, y, [(0, 3)]), updated(d, model, x, y, [(3, 12)])
    c.merge_state(d.metric_state)  # a state dict merges too
    assert c.compute().item() == sl.invariance(model, x, y, shifts=SHIFTS).worst_case_accuracy


def test_forward_returns_the_batch_value_and_accumulates_all():
    model, (x, y) = cnn(), data()
    metric = ShiftConsistency(K, SHIFTS)
    for lo, hi in SPLITS:
        assert metric(model, x[lo:hi], y[lo:hi]).item() == sl.invariance(model, x[lo:hi], shifts=SHIFTS).consistency
    assert metric.compute().item() == sl.invariance(model, x, shifts=SHIFTS).consistency


def test_reset_empties_the_states_and_an_empty_metric_gives_nan_or_says_why():
    model, (x, y) = cnn(), data()
    metric = updated(AccuracyByShift(K, SHIFTS), model, x, y)
    metric.reset()
    with pytest.warns(UserWarning, match="was called before the ``update`` method"):
        empty = metric.compute()
    assert empty.shape == (25,) and bool(empty.isnan().all())
    metric.update(model, x[:3], y[:3])  # only what comes after the reset counts
    assert metric.compute().tolist() == sl.invariance(model, x[:3], y[:3], shifts=SHIFTS).accuracy_by_shift
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no images were measured"):
        ShiftInvariance(K, SHIFTS).compute()
    with pytest.warns(UserWarning):
        assert math.isnan(ShiftConsistency(K, SHIFTS).compute().item())


def test_metrics_of_one_configuration_share_their_passes_in_a_collection():
    calls = []
    model, (x, y) = cnn(), data()
    model.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    metrics = torchmetrics.MetricCollection({"consistency": ShiftConsistency(K, SHIFTS), "flip": FlipRate(K, SHIFTS),
                                             "worst": WorstCaseAccuracy(K, SHIFTS)})
    metrics.update(model, x[:6], y[:6])  # the first update runs each metric (torchmetrics forms the groups)
    first = sum(calls)
    calls.clear()
    metrics.update(model, x[6:], y[6:])
    assert sum(calls) == first // 3  # then one metric's passes serve all three
    values = metrics.compute()
    full = sl.invariance(model, x, y, shifts=SHIFTS)
    assert (values["consistency"].item(), values["flip"].item(), values["worst"].item()) == (
        full.consistency, full.flip_rate, full.worst_case_accuracy)


def test_layer_equivariance_over_batches_is_the_functional_result():
    model, (x, _) = cnn(), data()
    shifts = [(0, 0), (1, 0), (0, 1), (2, 2), (1, 3)]
    whole = sl.equivariance(model, x, shifts=shifts)
    metric = LayerEquivarianceError(model, x[:1], shifts=shifts, fields=None)
    for lo, hi in SPLITS:
        metric.update(model, x[lo:hi])
    got = metric.compute()
    assert [layer.name for layer in got.layers] == [layer.name for layer in whole.layers] == ["0", "1", "2"]
    assert got.origins(1e-9) == whole.origins(1e-9)
    for a, b in zip(got.layers, whole.layers, strict=True):
        assert a.error_by_shift == pytest.approx(b.error_by_shift, rel=1e-12, abs=1e-15)
        assert [v is None for v in a.interior_error_by_shift] == [v is None for v in b.interior_error_by_shift]
        assert [v for v in a.interior_error_by_shift if v is not None] == pytest.approx(
            [v for v in b.interior_error_by_shift if v is not None], rel=1e-12, abs=1e-15)
    assert whole.layers[2].unaligned_error > 0.1  # the max-pool aliases: a value worth comparing
    loggable = LayerEquivarianceError(model, x, shifts=shifts)
    for lo, hi in SPLITS:
        loggable.update(model, x[lo:hi])
    values = loggable.compute()
    assert sorted(values) == sorted(f"{n}/{f}" for n in "012" for f in ("aligned_error", "unaligned_error"))
    assert values["2/unaligned_error"].item() == pytest.approx(whole.layers[2].unaligned_error, rel=1e-12)
    assert math.isnan(values["0/unaligned_error"].item()) is (whole.layers[0].unaligned_error is None)
    loggable.reset()
    with pytest.warns(UserWarning):
        assert all(v.isnan() for v in loggable.compute().values())
    metric.reset()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no images were measured"):
        metric.compute()  # fields=None: there is no result to give


def snapshot(model: nn.Module) -> dict:
    return {"training": [m.training for m in model.modules()],
            "state": {k: v.clone() for k, v in model.state_dict().items()},
            "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]}


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"] and after["hooks"] == before["hooks"]
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())


def bn_model() -> nn.Module:
    """BatchNorm with running statistics away from (0, 1), Dropout; left in training mode."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, K)).double()
    with torch.no_grad():
        model(torch.randn(8, 1, 10, 10, dtype=torch.float64) * 3 + 1)
    return model.train()


@pytest.mark.parametrize("cls", [ShiftConsistency, LayerEquivarianceError])
def test_the_metric_never_holds_the_model_and_leaves_it_as_it_was(cls):
    model, (x, y) = bn_model(), data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the model is in training mode": measured in eval mode
        metric = cls(model, x[:1], shifts=1) if cls is LayerEquivarianceError else cls(K, shifts=1)
        before = snapshot(model)
        metric.update(model, x) if cls is LayerEquivarianceError else metric.update(model, x, y)
    assert_unchanged(model, before)
    assert list(metric.children()) == [] and not any(isinstance(v, nn.Module) for v in vars(metric).values())
    assert not any(k.startswith(("0.", "1.")) for k in metric.state_dict())  # no parameter of the model
    metric.to("cpu")  # moving the metric moves its states only
    assert_unchanged(model, before)


class Failing(nn.Module):
    """Returns NaN logits from its second forward pass after ``arm()``: a failure in the middle of
    a measurement, after passes that would have moved BatchNorm's statistics in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.calls = bn_model(), None

    def arm(self) -> None:
        self.calls = 0

    def forward(self, x):
        out = self.body(x)
        if self.calls is not None:
            self.calls += 1
            if self.calls >= 2:
                return out * math.nan
        return out


@pytest.mark.parametrize("failure", ["nan-output", "wrong-classes", "bad-images", "labels-missing"])
def test_an_update_that_raises_leaves_the_model_and_the_states_as_they_were(failure):
    model, (x, y) = Failing(), data()
    metric = WorstCaseAccuracy(K if failure != "wrong-classes" else K + 1, shifts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if failure != "wrong-classes":
            metric.update(model, x[:4], y[:4])
        states = {k: v.clone() for k, v in metric.metric_state.items()}
        if failure == "nan-output":
            model.arm()
        before = snapshot(model)
        args = {"nan-output": (x, y), "wrong-classes": (x, y), "bad-images": (x[0], y[:1]),
                "labels-missing": (x, None)}[failure]
        match = {"nan-output": "produced NaN or Inf", "wrong-classes": f"outputs {K} classes but .* num_classes={K + 1}",
                 "bad-images": "must be 4-D", "labels-missing": "WorstCaseAccuracy needs labels"}[failure]
        with pytest.raises(ValueError, match=match):
            metric.update(model, *args)
    assert_unchanged(model, before)
    assert all(torch.equal(metric.metric_state[k], v) for k, v in states.items())


def test_bad_configurations_are_refused_with_the_fix():
    model, (x, y) = cnn(), data()
    with pytest.raises(ValueError, match="FlipRate needs neighbouring shifts"):
        FlipRate(K, shifts=[(0, 0), (2, 2)])
    with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
        ShiftConsistency(0)
    metric = ShiftConsistency(K, SHIFTS)
    metric.update(model, x[:2], y[:2])
    with pytest.raises(ValueError, match="give labels with every update or with none"):
        metric.update(model, x[2:4])
    unlabelled = ShiftConsistency(K, SHIFTS)
    unlabelled.update(model, x[2:5])
    metric.merge_state(unlabelled)  # as a sync of a labelled and an unlabelled process would
    with pytest.raises(ValueError, match="labels were given for 2 of the 5 images"):
        metric.compute()
    with pytest.raises(ValueError, match="fields must be a list of aligned_error"):
        LayerEquivarianceError(model, x, fields=["accuracy"])
    trunk = model[:3].eval()  # fully convolutional: runs on any size
    eq = LayerEquivarianceError(trunk, x, shifts=1)
    with pytest.raises(ValueError, match="differ from those the metric was built for"):
        eq.update(trunk, torch.randn(2, 1, 12, 12, dtype=torch.float64))  # other map shapes
    with pytest.raises(ValueError, match="differ from those the metric was built for"):
        eq.update(model[:2].eval(), x)  # other layers


# --- two processes -------------------------------------------------------------------------------


def _on_each_rank() -> dict:
    """Rank r updates on its own half of the images (the DDP way); compute syncs the states."""
    r = distributed.rank()
    model, (x, y) = cnn(), data()
    half = slice(0, 7) if r == 0 else slice(7, 12)
    metrics = {cls.__name__: cls(K, SHIFTS) for cls in list(SCALARS) + [ShiftInvariance]}
    for metric in metrics.values():
        metric.update(model, x[half], y[half])
    out = {name: m.compute() for name, m in metrics.items()}
    out["ShiftInvariance"] = out["ShiftInvariance"].to_dict()
    local = ShiftInvariance(K, SHIFTS)
    local.update(model, x[half], y[half])
    local.sync()
    out["synced-n"] = int(local.n_images)
    local.unsync()
    out["unsynced-n"] = int(local.n_images)
    # a rank that never updates still takes part in the sync (fixed-size states)
    silent = ShiftConsistency(K, SHIFTS)
    layers = LayerEquivarianceError(model, x[:1], shifts=1, fields=None)
    if r == 0:
        silent.update(model, x, y)
        layers.update(model, x)
    out["silent-rank"] = silent.compute()
    out["layers-silent-rank"] = layers.compute().to_dict()
    step = ShiftConsistency(K, SHIFTS, dist_sync_on_step=True)  # forward's value is synced across ranks
    out["step"] = step(model, x[half], y[half])
    out["after-step"] = step.compute()
    return out


@pytest.fixture(scope="module")
def ranks() -> list[dict]:
    return run_ranks(_on_each_rank, world=2)


@pytest.mark.parametrize("name", [cls.__name__ for cls in SCALARS])
def test_a_two_process_sync_gives_the_one_process_value_on_every_rank(ranks, name):
    model, (x, y) = cnn(), data()
    field = {cls.__name__: f for cls, f in SCALARS.items()}[name]
    want = getattr(sl.invariance(model, x, y, shifts=SHIFTS), field)
    assert ranks[0][name].tolist() == ranks[1][name].tolist() == want


def test_a_two_process_sync_of_every_field(ranks):
    model, (x, y) = cnn(), data()
    want = sl.invariance(model, x, y, shifts=SHIFTS)
    assert ranks[0]["ShiftInvariance"] == ranks[1]["ShiftInvariance"]  # bitwise the same on every rank
    assert_same_result(ranks[0]["ShiftInvariance"], want)


def test_sync_unsync_and_a_rank_without_updates(ranks):
    model, (x, _) = cnn(), data()
    assert [r["synced-n"] for r in ranks] == [12, 12] and [r["unsynced-n"] for r in ranks] == [7, 5]
    assert ranks[0]["silent-rank"].item() == ranks[1]["silent-rank"].item() == sl.invariance(
        model, x, shifts=SHIFTS).consistency
    layers = sl.equivariance(model, x, shifts=1).to_dict()
    for r in ranks:
        got = r["layers-silent-rank"]
        assert [layer["name"] for layer in got["layers"]] == [layer["name"] for layer in layers["layers"]]
        for a, b in zip(got["layers"], layers["layers"], strict=True):
            assert a["error_by_shift"] == pytest.approx(b["error_by_shift"], rel=1e-12, abs=1e-15)


def test_dist_sync_on_step_gives_the_value_of_both_ranks_batches(ranks):
    model, (x, _) = cnn(), data()
    both = sl.invariance(model, x, shifts=SHIFTS).consistency  # the two halves together
    assert ranks[0]["step"].item() == ranks[1]["step"].item() == both
    assert ranks[0]["after-step"].item() == both  # the global state counted each batch once


def test_a_metric_is_copied_with_its_states_not_a_model():
    model, (x, y) = cnn(), data()
    metric = updated(ShiftConsistency(K, SHIFTS), model, x, y)
    clone = copy.deepcopy(metric)
    assert clone.compute().item() == metric.compute().item() == sl.invariance(model, x, shifts=SHIFTS).consistency
