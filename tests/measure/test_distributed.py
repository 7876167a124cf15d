"""Measurement under torch.distributed (docs/distributed.md): real 2-process gloo groups against
one process. Counts and the predictions table are identical, float sums agree to 1e-12 relative,
every rank returns the same result, a rank with no image takes part, and a failure on one rank
stops every rank instead of hanging them."""

from __future__ import annotations

import pytest
import torch
from test_invariance import (
    assert_unchanged,
    bn_dropout_model,
    random_cnn,
    random_images,
    snapshot,
)
from torch import nn

import shiftlab as sl
from shiftlab.measure import distributed
from shiftlab.measure.distributed import PeerFailure, reduce_add, shard_bounds
from shiftlab.measure.layer_records import LayerAccumulator
from shiftlab.measure.shiftsets import ShiftSet
from spawn_ranks import run_ranks

pytestmark = pytest.mark.usefixtures("one_thread")

#: Fields that are float sums (the probability change, the mean top-1 probability) or derived
#: from one: added in another grouping across processes, so equal to rounding only.
FLOAT_SUMS = ("top1_prob_change", "mean_top1_prob")


def certified_model() -> nn.Module:
    """Circular padding and a global pool: the polyphase certificate holds (total stride 4)."""
    return sl.zoo.build("maxpool_gap", num_classes=10, width=4, input_size=16, padding_mode="circular",
                        seed=2).double().eval()


def labels_for(n: int) -> torch.Tensor:
    return torch.arange(n) % 4


# Each case: (model, images, labels, keyword arguments), rebuilt identically in every process.
CASES = {
    "n13": lambda: (random_cnn(), random_images(13), labels_for(13), {"shifts": 2, "batch_size": 4}),
    "n1": lambda: (random_cnn(), random_images(1), labels_for(1), {"shifts": 2, "batch_size": 4}),
    "n13-zeros-auto": lambda: (random_cnn(), random_images(13), None,
                               {"shifts": [(1, 0), (0, 1), (2, 3), (-1, -2)], "mode": "zeros", "batch_size": "auto"}),
    "n13-certified": lambda: (certified_model(), random_images(13, 16, 16), labels_for(13) * 2,
                              {"shifts": ShiftSet.full(16, 16), "batch_size": 64}),
}


EQ_SHIFTS = [(0, 0), (1, 0), (0, 1), (2, 2), (1, -3)]


def measure_layers(n: int) -> dict:
    return sl.equivariance(random_cnn(), random_images(n), shifts=EQ_SHIFTS, batch_size=12).to_dict()


def assert_close(got: object, want: object, path: str = "") -> None:
    """Nested results equal, floats to 1e-12 relative (sums over images added in another grouping)."""
    if isinstance(want, float) and isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), path
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_close(a, b, f"{path}[{i}]")
    else:
        assert got == want, path


def measure(case: str) -> sl.InvarianceResult:
    model, x, labels, kwargs = CASES[case]()
    return sl.invariance(model, x, labels, keep_predictions=True, **kwargs)


def _outcome(fn) -> tuple[str, str]:
    """``(exception class name, message)`` of ``fn()``, which must raise."""
    try:
        fn()
    except Exception as err:  # noqa: BLE001 (the test compares what each rank raised)
        return type(err).__name__, str(err)
    return "no error", ""


def _nan_on_rank1() -> tuple[tuple[str, str], bool]:
    model = bn_dropout_model().eval()
    model[4].active = distributed.rank() == 1  # only rank 1's model fails, after rank 0 has passed its checks
    before = snapshot(model)
    outcome = _outcome(lambda: sl.invariance(model, random_images(13, 8, 8), shifts=1, batch_size=8))
    try:
        assert_unchanged(model, before)
    except AssertionError:
        return outcome, False
    return outcome, True


def _ddp_measure() -> dict:
    """``invariance`` of a DistributedDataParallel wrapper (measured through its module)."""
    model, x, labels, kwargs = CASES["n13"]()
    ddp = nn.parallel.DistributedDataParallel(model)
    return sl.invariance(ddp, x, labels, keep_predictions=True, **kwargs).to_dict(include_predictions=True)


def _scenarios() -> dict:
    """What every rank of the group computes."""
    r = distributed.rank()
    out = {
        "rank": (distributed.rank(), distributed.world_size(), distributed.active()),
        "shards": [shard_bounds(n) for n in (0, 1, 2, 13)],
        "gathered": reduce_add([r]),
        "sum-skips-none": reduce_add(5 if r == 0 else None),
        "all-none": reduce_add(None),
        "results": {case: measure(case).to_dict(include_predictions=True) for case in CASES},
        "layers": {n: measure_layers(n) for n in (13, 1)},
        "nan-on-rank1": _nan_on_rank1(),
        "different-images": _outcome(lambda: sl.invariance(random_cnn(), random_images(5, seed=r), shifts=1)),
        "different-shifts": _outcome(lambda: sl.invariance(random_cnn(), random_images(5), shifts=1 + r)),
        "different-weights": _outcome(lambda: sl.invariance(random_cnn(seed=r), random_images(5), shifts=1)),
        "ddp-wrapper": _ddp_measure(),
    }
    # every rank still answers after the failures above: the group is not left waiting
    out["after-failures"] = measure("n1").consistency
    return out


@pytest.fixture(scope="module")
def ranks() -> list[dict]:
    return run_ranks(_scenarios, world=2)


def test_the_group_is_real_and_shards_are_contiguous_and_complete(ranks):
    assert [r["rank"] for r in ranks] == [(0, 2, True), (1, 2, True)]
    # n = 0, 1, 2, 13 split over 2 ranks: the first ranks get the extra item, none is lost or padded
    assert ranks[0]["shards"] == [(0, 0), (0, 1), (0, 1), (0, 7)]
    assert ranks[1]["shards"] == [(0, 0), (1, 1), (1, 2), (7, 13)]


def test_reduce_add_adds_in_rank_order_and_skips_ranks_without_data(ranks):
    for r in ranks:
        assert r["gathered"] == [0, 1]  # list + list concatenates in rank order
        assert r["sum-skips-none"] == 5 and r["all-none"] is None


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_give_the_numbers_of_one(ranks, case):
    one = measure(case).to_dict(include_predictions=True)
    two = [r["results"][case] for r in ranks]
    assert two[0] == two[1]  # every rank returns the same result, bitwise
    for key, value in one.items():
        if key in FLOAT_SUMS and value is not None:
            assert two[0][key] == pytest.approx(value, rel=1e-12, abs=0), key
        elif key == "batch_size" and CASES[case]()[3]["batch_size"] == "auto":
            assert two[0][key] >= 1  # the smallest any rank chose (each rank's own free memory)
        else:
            assert two[0][key] == value, key  # counts, predictions table, caution, certificate: identical
    if case == "n13-certified":
        assert two[0]["method"] == "certified" and two[0]["certificate"]["holds"]


@pytest.mark.parametrize("n", [13, 1])
def test_two_processes_give_the_layer_errors_of_one(ranks, n):
    one = measure_layers(n)
    two = [r["layers"][n] for r in ranks]
    assert two[0] == two[1]  # every rank returns the same result
    assert_close(two[0], one)
    assert any(layer["unaligned_error"] for layer in one["layers"])  # errors worth comparing


def test_a_failure_on_one_rank_stops_every_rank_and_leaves_the_model_as_it_was(ranks):
    (kind0, msg0), unchanged0 = ranks[0]["nan-on-rank1"]
    (kind1, msg1), unchanged1 = ranks[1]["nan-on-rank1"]
    assert kind1 == "ValueError" and "produced NaN or Inf outputs" in msg1
    assert kind0 == PeerFailure.__name__ and "rank 1 of 2 failed: ValueError: the model produced NaN" in msg0
    assert unchanged0 and unchanged1
    assert ranks[0]["after-failures"] == ranks[1]["after-failures"] == measure("n1").consistency


def test_a_ddp_wrapper_gives_the_numbers_of_its_module(ranks):
    assert ranks[0]["ddp-wrapper"] == ranks[1]["ddp-wrapper"] == ranks[0]["results"]["n13"]


@pytest.mark.parametrize("key, what", [("different-images", "images"), ("different-shifts", "shifts"),
                                       ("different-weights", "model")])
def test_ranks_that_hold_different_inputs_are_refused_on_every_rank(ranks, key, what):
    for r in ranks:
        kind, message = r[key]
        assert kind == "ValueError", message
        assert f"needs the same {what} on every rank" in message and "DistributedSampler" in message


def test_without_a_process_group_everything_is_the_identity():
    assert not distributed.active() and distributed.rank() == 0 and distributed.world_size() == 1
    assert shard_bounds(13) == (0, 13) and shard_bounds(0) == (0, 0)
    assert reduce_add({"a": 1}) == {"a": 1} and distributed.all_gather(3) == [3]
    assert distributed.first_rank(lambda: "computed") == "computed"
    model = random_cnn()
    assert distributed.local_module(model) is model
    with pytest.raises(ValueError, match="n >= 0"):
        shard_bounds(-1)


def _accumulator(x: torch.Tensor, offsets: torch.Tensor) -> LayerAccumulator:
    """A layer's sums over images ``x [n, C, 8, 8]``: the shifted copies plus a perturbation that
    does not move with the shift, so every shift has an error."""
    acc = LayerAccumulator("conv", "Conv2d", (2, 8, 8), (8, 8), 1, offsets, "circular")
    shifted = torch.stack([sl.shift(x, *map(float, d)) for d in offsets]) + 0.1 * x.square()
    acc.add(torch.cat([x, shifted.flatten(0, 1)]), x.shape[0], torch.arange(len(offsets)))
    return acc


def test_layer_sums_add_exactly():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 8, 8, generator=gen, dtype=torch.float64)
    offsets = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    whole = _accumulator(x, offsets)
    parts = _accumulator(x[:2], offsets) + _accumulator(x[2:], offsets)
    for name in ("sq_err", "sq_ref", "sq_err_in", "sq_ref_in", "n_in"):
        assert torch.allclose(getattr(parts, name), getattr(whole, name), rtol=1e-14, atol=0), name
    assert torch.equal(parts.n_in, whole.n_in) and bool((parts.sq_err > 0).all())
    assert (parts.peak_lo, parts.peak_hi) == (whole.peak_lo, whole.peak_hi)
    assert torch.allclose(parts.relative_errors(), whole.relative_errors(), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="different layers or shift sets"):
        parts + LayerAccumulator("other", "Conv2d", (2, 8, 8), (8, 8), 1, offsets, "circular")


@pytest.mark.skipif(not torch.cuda.is_available() or not torch.distributed.is_nccl_available(),
                    reason="needs CUDA and the nccl backend")
def test_nccl_group_gives_the_numbers_of_one_process():
    """The statistics travel as CUDA tensors on nccl: one rank per GPU (a 1-rank group on one GPU)."""
    results = run_ranks(measure, "n13", world=min(2, torch.cuda.device_count()), backend="nccl")
    one = measure("n13")
    for res in results:
        assert torch.equal(res.predictions, one.predictions) and res.class_counts == one.class_counts
        assert res.top1_prob_change == pytest.approx(one.top1_prob_change, rel=1e-12, abs=0)
