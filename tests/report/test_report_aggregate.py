"""Per model x condition statistics over seeds, and architecture families read off real profiles."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from shiftlab import equivariance
from shiftlab.report import aggregate
from shiftlab.report.aggregate import Stat, downsampling_flags
from shiftlab.zoo import build, names


def test_groups_ordered_and_summarised(synth):
    results = synth(seed_noise=0.004)
    groups = aggregate(results)
    assert list(groups)[:2] == [("maxpool_fc", "centred"), ("maxpool_fc", "augmented")]
    g = groups[("fcn_gap", "centred")]
    assert g.seeds == [0, 1]
    st = g.stat("canvas.consistency")
    assert st.mean == pytest.approx(0.80) and st.n == 2
    assert st.std == pytest.approx(0.004 * math.sqrt(2))  # sample std of 0.796, 0.804
    assert (st.min, st.max) == pytest.approx((0.796, 0.804))
    assert g.series["accuracy_by_distance"].mean.shape == (3,)
    assert g.series["canvas.accuracy_by_shift"].mean.shape == (25,)
    assert g.series["periodicity.residue_agreement"].mean.shape == (2, 2)
    assert g.mean("circular.flip_rate") is not None and g.mean("params") == 1070


def test_stat_ignores_missing_values():
    assert Stat.of([None, 1.0, float("nan"), "nan", 3.0]) == Stat(2.0, math.sqrt(2), 1.0, 3.0, 2)
    assert Stat.of([None]).mean is None and Stat.of([5]).std == 0.0
    assert Stat.of(["inf", 1.0]).max == math.inf  # shiftlab.io.json_safe writes non-finite floats as strings


def test_non_finite_strings_are_read_back(synth):
    results = synth()
    results["runs"][0]["canvas"]["top1_prob_change"] = "nan"
    results["runs"][0]["accuracy_by_distance"][1] = "nan"
    g = aggregate(results)[("maxpool_fc", "centred")]
    assert g.stat("canvas.top1_prob_change").n == 1
    assert "accuracy_by_distance" in g.series and g.series["accuracy_by_distance"].n == 2


def test_series_that_do_not_line_up_are_dropped(synth):
    results = synth()
    bad = copy.deepcopy(results)
    bad["runs"][1]["accuracy_by_distance"].append(0.5)  # runs[0], runs[1]: maxpool_fc / centred, seeds 0 and 1
    bad["runs"][1]["circular"]["shifts"][0] = [7.0, 7.0]  # another random sample of circular shifts
    g = aggregate(bad)[("maxpool_fc", "centred")]
    assert {"accuracy_by_distance", "circular.shifts", "circular.accuracy_by_shift"} <= set(g.dropped)
    assert "accuracy_by_distance" not in g.series and "canvas.accuracy_by_shift" in g.series
    assert g.mean("circular.consistency") is not None  # scalars are still averaged


def test_inconsistent_runs_are_rejected(synth):
    results = synth()
    bad = copy.deepcopy(results)
    bad["runs"][1]["equivariance"]["layers"].pop()
    with pytest.raises(ValueError, match="profiles differ"):
        aggregate(bad)
    dup = copy.deepcopy(results)
    dup["runs"][1]["seed"] = dup["runs"][0]["seed"]
    with pytest.raises(ValueError, match="twice"):
        aggregate(dup)


def test_families_from_real_zoo_profiles(synth):
    """Trunk and head are read off the measured layers of the real zoo models, not their names."""
    results = synth(models=tuple(names()), conditions=("centred",), seeds=(0,))
    for run in results["runs"]:
        model = build(run["model"], input_size=16, width=2, seed=0).eval()
        run["equivariance"] = equivariance(model, torch.rand(2, 1, 16, 16), shifts=[(0, 0), (1, 0), (2, 2)]).to_dict()
        run["model"] = "net_" + run["model"]  # hide the name: the family must come from the layers
    fam = {m[4:]: (g.trunk, g.head) for (m, _), g in aggregate(results).items()}
    assert fam == {
        "maxpool_fc": ("maxpool", "fc"), "strided_fc": ("strided", "fc"), "fcn_gap": ("strided", "gap"),
        "fcn_gmp": ("strided", "gmp"), "maxpool_gap": ("maxpool", "gap"), "blurpool_gap": ("other", "gap"),
        "aps_gap": ("other", "gap"),
    }


def test_downsampling_flags_skip_trims_and_global_pools():
    layers = [
        {"kind": "Conv2d", "stride": [1, 1], "shape": [4, 16, 16]},
        {"kind": "MaxPool2d", "stride": [1.0667, 1.0667], "shape": [4, 15, 15]},
        {"kind": "BlurPool2d", "stride": [2, 2], "shape": [4, 8, 8]},
        {"kind": "MaxBlurPool2d", "stride": [2, 2], "shape": [4, 8, 8]},
        {"kind": "Conv2d", "stride": [4, 4], "shape": [8, 4, 4]},
        {"kind": "AdaptiveAvgPool2d", "stride": [16, 16], "shape": [10, 1, 1]},
    ]
    assert downsampling_flags(layers) == [False, False, True, False, True, False]
