"""Factorial effects: a hand-computed 2 x 2 x 2 design, pairing across effects, balance checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shiftlab.stats import Design, Effect, Interval, PairedSample, cell_means, contrast, interaction, main_effect

FACTORS = {"downsampling": ("strided", "maxpool"), "head": ("gap", "fc"), "condition": ("centred", "augmented")}
# Hand-written cell means m[d, h, c].
MEANS = {
    ("strided", "gap", "centred"): 0.40,
    ("strided", "gap", "augmented"): 0.70,
    ("strided", "fc", "centred"): 0.30,
    ("strided", "fc", "augmented"): 0.50,
    ("maxpool", "gap", "centred"): 0.80,
    ("maxpool", "gap", "augmented"): 0.90,
    ("maxpool", "fc", "centred"): 0.60,
    ("maxpool", "fc", "augmented"): 0.85,
}


def _key(levels: dict[str, str]) -> str:
    return f"{levels['downsampling']}_{levels['head']}/{levels['condition']}"


def _design() -> Design:
    return Design(FACTORS, _key)


def _constant_sample() -> PairedSample:
    """Constant within each cell, so every replicate equals the hand-computed value exactly."""
    return PairedSample({_key(dict(zip(FACTORS, combo, strict=True))): np.full((2, 4), m) for combo, m in MEANS.items()})


def test_main_effects_by_hand():
    d, s = _design(), _constant_sample()
    m = MEANS
    ds = (m["maxpool", "gap", "centred"] + m["maxpool", "gap", "augmented"]
          + m["maxpool", "fc", "centred"] + m["maxpool", "fc", "augmented"]) / 4 - (
        m["strided", "gap", "centred"] + m["strided", "gap", "augmented"]
        + m["strided", "fc", "centred"] + m["strided", "fc", "augmented"]
    ) / 4
    head = (m["strided", "gap", "centred"] + m["strided", "gap", "augmented"]
            + m["maxpool", "gap", "centred"] + m["maxpool", "gap", "augmented"]) / 4 - (
        m["strided", "fc", "centred"] + m["strided", "fc", "augmented"]
        + m["maxpool", "fc", "centred"] + m["maxpool", "fc", "augmented"]
    ) / 4
    cond = (m["strided", "gap", "augmented"] + m["strided", "fc", "augmented"]
            + m["maxpool", "gap", "augmented"] + m["maxpool", "fc", "augmented"]) / 4 - (
        m["strided", "gap", "centred"] + m["strided", "fc", "centred"]
        + m["maxpool", "gap", "centred"] + m["maxpool", "fc", "centred"]
    ) / 4
    assert (ds, head, cond) == pytest.approx((0.3125, 0.1375, 0.2125), abs=1e-12)
    for factor, a, b, want in [
        ("downsampling", "maxpool", "strided", ds),
        ("head", "gap", "fc", head),
        ("condition", "augmented", "centred", cond),
        ("condition", "centred", "augmented", -cond),
    ]:
        iv = main_effect(d, s, factor, a, b, n_boot=50)
        assert iv.estimate == pytest.approx(want, abs=1e-12)
        assert iv.low == pytest.approx(want, abs=1e-12) and iv.high == pytest.approx(want, abs=1e-12)


def test_two_way_interactions_by_hand():
    d, s = _design(), _constant_sample()
    # downsampling x head, averaged over condition: [m(maxpool, gap) - m(strided, gap)] - [m(maxpool, fc) - m(strided, fc)]
    mp_gap, st_gap = (0.80 + 0.90) / 2, (0.40 + 0.70) / 2
    mp_fc, st_fc = (0.60 + 0.85) / 2, (0.30 + 0.50) / 2
    ds_head = (mp_gap - st_gap) - (mp_fc - st_fc)
    # downsampling x condition, averaged over head.
    mp_aug, st_aug = (0.90 + 0.85) / 2, (0.70 + 0.50) / 2
    mp_cen, st_cen = (0.80 + 0.60) / 2, (0.40 + 0.30) / 2
    ds_cond = (mp_aug - st_aug) - (mp_cen - st_cen)
    # head x condition, averaged over downsampling.
    gap_aug, fc_aug = (0.70 + 0.90) / 2, (0.50 + 0.85) / 2
    gap_cen, fc_cen = (0.40 + 0.80) / 2, (0.30 + 0.60) / 2
    head_cond = (gap_aug - fc_aug) - (gap_cen - fc_cen)
    assert (ds_head, ds_cond, head_cond) == pytest.approx((-0.025, -0.075, -0.025), abs=1e-12)
    cases = [
        ("downsampling", ("maxpool", "strided"), "head", ("gap", "fc"), ds_head),
        ("head", ("gap", "fc"), "downsampling", ("maxpool", "strided"), ds_head),  # symmetric
        ("downsampling", ("maxpool", "strided"), "condition", ("augmented", "centred"), ds_cond),
        ("head", ("gap", "fc"), "condition", ("augmented", "centred"), head_cond),
        ("head", ("fc", "gap"), "condition", ("augmented", "centred"), -head_cond),
    ]
    for f1, l1, f2, l2, want in cases:
        iv = interaction(d, s, f1, l1, f2, l2, n_boot=50)
        assert (iv.estimate, iv.low, iv.high) == pytest.approx((want, want, want), abs=1e-12)


def test_three_level_factor_averages_the_other_factors_equally():
    d = Design({"ds": ("a", "b", "c"), "head": ("x", "y")}, {(p, q): p + q for p in "abc" for q in "xy"})
    vals = {"ax": 1.0, "ay": 3.0, "bx": 10.0, "by": 20.0, "cx": 100.0, "cy": 100.0}
    s = PairedSample({k: [[v]] for k, v in vals.items()})
    assert main_effect(d, s, "ds", "b", "a", n_boot=5).estimate == pytest.approx(15.0 - 2.0)
    assert main_effect(d, s, "head", "y", "x", n_boot=5).estimate == pytest.approx((3 + 20 + 100 - 1 - 10 - 100) / 3)
    assert interaction(d, s, "ds", ("b", "a"), "head", ("y", "x"), n_boot=5).estimate == pytest.approx((20 - 3) - (10 - 1))


def test_effects_share_the_paired_replicates_of_contrast():
    rng = np.random.default_rng(1)
    shared = rng.normal(size=(3, 60))
    s = PairedSample({_key(dict(zip(FACTORS, c, strict=True))): shared + m + rng.normal(0, 0.02, (3, 60))
                      for c, m in MEANS.items()})
    d = _design()
    iv = main_effect(d, s, "head", "gap", "fc", n_boot=400, seed=9)
    weights = {_key(dict(zip(FACTORS, c, strict=True))): (0.25 if c[1] == "gap" else -0.25) for c in MEANS}
    assert iv == contrast(s, weights, n_boot=400, seed=9)
    # Pairing: the shared noise cancels, so the effect is far tighter than any single cell mean.
    cell = cell_means(s, n_boot=400, seed=9)["strided_gap/centred"]
    assert (iv.high - iv.low) * 10 < cell.high - cell.low


def test_unbalanced_design_names_the_missing_cell():
    table = {combo: _key(dict(zip(FACTORS, combo, strict=True))) for combo in itertools.product(*FACTORS.values())}
    del table[("maxpool", "fc", "augmented")]
    with pytest.raises(ValueError, match=r"downsampling=maxpool, head=fc, condition=augmented"):
        Design(FACTORS, table)
    with pytest.raises(ValueError, match=r"head=gap, condition=centred"):
        Design(FACTORS, lambda lv: None if lv["head"] == "gap" and lv["condition"] == "centred" else _key(lv))
    full = _constant_sample()
    partial = PairedSample({k: v for k, v in full.values.items() if k != "maxpool_fc/augmented"})
    with pytest.raises(ValueError, match=r"'maxpool_fc/augmented' \(downsampling=maxpool, head=fc, condition=augmented\)"):
        main_effect(_design(), partial, "head", "gap", "fc", n_boot=10)
    with pytest.raises(ValueError, match="maxpool_fc/augmented"):
        interaction(_design(), partial, "head", ("gap", "fc"), "condition", ("centred", "augmented"), n_boot=10)


def test_invalid_designs_and_arguments():
    with pytest.raises(ValueError, match="own cell"):
        Design({"f": ("a", "b")}, lambda lv: "same")
    with pytest.raises(ValueError, match="distinct"):
        Design({"f": ("a", "a")}, lambda lv: lv["f"])
    d, s = _design(), _constant_sample()
    with pytest.raises(ValueError, match="unknown factor"):
        main_effect(d, s, "width", "a", "b")
    with pytest.raises(ValueError, match="no level 'aps'"):
        main_effect(d, s, "downsampling", "aps", "strided")
    with pytest.raises(ValueError, match="two different levels"):
        main_effect(d, s, "head", "gap", "gap")
    with pytest.raises(ValueError, match="two different factors"):
        interaction(d, s, "head", ("gap", "fc"), "head", ("gap", "fc"))


def test_effect_record():
    e = Effect("interaction", ("downsampling", "head"), (("maxpool", "strided"), ("gap", "fc")), "consistency",
               Interval(-0.1, -0.2, 0.0))
    assert e.to_dict() == {
        "kind": "interaction",
        "factors": ["downsampling", "head"],
        "levels": [["maxpool", "strided"], ["gap", "fc"]],
        "metric": "consistency",
        "interval": {"estimate": -0.1, "low": -0.2, "high": 0.0, "level": 0.95, "n_boot": 2000},
    }
    with pytest.raises(ValueError, match="kind"):
        Effect("total", ("head",), (("gap", "fc"),), "m", Interval(0, 0, 0))
    with pytest.raises(ValueError, match="2 factor"):
        Effect("interaction", ("head",), (("gap", "fc"),), "m", Interval(0, 0, 0))
