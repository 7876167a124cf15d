"""The segmentation study's statistics and verdict on synthetic runs (shiftlab.segmentation.analysis,
.verdict): per-image metrics, mIoU as a ratio of sums with its bootstrap, decisions, the sentences
(equivariant / not / inconclusive) and claim C10."""

from __future__ import annotations

import numpy as np
import pytest

from shiftlab.segmentation.analysis import analyse_seg, miou_of_counts, miou_replicates
from shiftlab.segmentation.config import SegStudyConfig
from shiftlab.segmentation.job import SegRunRecord, seg_jobs
from shiftlab.segmentation.shift_set import seg_shifts, shift_kind
from shiftlab.segmentation.verdict import c10, seg_verdict
from shiftlab.stats.bootstrap import bootstrap_indices, replicate_sums

N, K = 40, 3
CONFIG = SegStudyConfig(models=("unet_maxpool_transposed", "unet_aps_transposed", "unet_aps_aps"),
                        conditions=("plain", "circular"), seeds=2, n_boot=300)


def _record(job, agreement_by_kind):
    shifts = seg_shifts(8)
    return SegRunRecord(key=job.key, model=job.model, condition=job.condition, seed=job.seed, downsampling="x",
                        upsampling="y", padding="zeros", params=1, macs=1, receptive_field=1, total_stride=8,
                        history=[{"epoch": 1, "train_loss": 0.1, "train_acc": 0.9, "seconds": 1.0}], mode="zeros",
                        shifts=shifts, miou=0.5, miou_by_shift=[0.5] * len(shifts),
                        agreement_by_shift=[0.0] * len(shifts), eq_t_db_by_shift=[None] * len(shifts), layers=[],
                        seconds=1.0)


def _runs(levels, noise=0.01, seed=0):
    """Records and arrays where cell (model, condition) agrees at ``levels[(model, condition)][kind]`` on average."""
    rng = np.random.default_rng(seed)
    records, arrays = [], []
    shifts = seg_shifts(8)
    kinds = [shift_kind(d, 8) for d in shifts]
    for job in seg_jobs(CONFIG):
        level = levels[(job.model, job.condition)]
        agree = np.ones((N, len(shifts)), dtype=np.float32)
        for j, kind in enumerate(kinds):
            if kind != "centre" and level[kind] < 1:
                agree[:, j] = np.clip(level[kind] + noise * rng.standard_normal(N), 0, 1)
        counts = rng.integers(1, 50, size=(N, K, 3)).astype(np.int32)
        records.append(_record(job, level))
        arrays.append({"agreement": 1 - (1 - agree) / 10, "object_agreement": agree, "counts_centre": counts,
                       "counts_shifted": counts})
    return records, arrays


EXACT = {"near": 1.0, "aligned": 1.0, "unaligned": 1.0}
ALIASED = {"near": 0.95, "aligned": 0.99, "unaligned": 0.90}


def test_mean_iou_of_counts_and_its_replicates_are_ratios_of_sums():
    counts = np.array([[3, 0, 1], [2, 1, 0]])
    assert miou_of_counts(counts) == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert np.isnan(miou_of_counts(np.zeros((2, 3))))
    per = np.random.default_rng(0).integers(0, 9, size=(2, 5, 4, 3))
    ident = miou_replicates(per, np.arange(2)[None], np.arange(5)[None])
    assert ident[0] == pytest.approx(miou_of_counts(per.sum(axis=(0, 1))))
    s, i = bootstrap_indices(2, 5, n_boot=7, seed=3)
    reps = miou_replicates(per, s, i)
    for b in range(7):  # replicate b sums the drawn seeds and images, repeats included
        assert reps[b] == pytest.approx(miou_of_counts(per[s[b]][:, i[b]].sum(axis=(0, 1))))
    assert replicate_sums(np.ones((1, 2, 5)), s, i).tolist() == [[10.0] * 7]
    with pytest.raises(ValueError, match="finite"):
        replicate_sums(np.full((1, 2, 2), np.nan), s[:, :2], i[:, :2])


def test_cells_hold_the_per_image_means_and_exactness():
    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    levels[("unet_aps_aps", "circular")] = EXACT
    results = analyse_seg(CONFIG, *_runs(levels))
    base = results.cell("unet_maxpool_transposed", "plain")
    assert base.agreement["object_aligned"].estimate == pytest.approx(0.99, abs=0.005)
    assert base.agreement["object_unaligned"].estimate == pytest.approx(0.90, abs=0.005)
    assert base.agreement["object_gap"].estimate == pytest.approx(0.09, abs=0.007)
    assert base.agreement["gap"].estimate == pytest.approx(0.009, abs=0.001)  # all pixels: a tenth disagrees as much
    assert base.agreement["object_gap"].low > 0.02 and not base.exact
    assert base.trained == 0  # the runs' last training pixel accuracy, 0.9, is below the target 0.98
    exact = results.cell("unet_aps_aps", "circular")
    assert exact.exact and exact.agreement["massc"].estimate == 1.0 == exact.agreement["massc"].low
    assert 0 < base.miou.low <= base.miou.estimate <= base.miou.high < 1
    both = results.comparison("unet_aps_aps", "unet_maxpool_transposed", "circular", "object_massc")
    assert both.outcome == "more" and both.interval.low > 0.02


def test_verdict_says_not_equivariant_names_aliasing_and_the_exact_unet():
    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    levels[("unet_aps_aps", "circular")] = EXACT
    results = analyse_seg(CONFIG, *_runs(levels))
    v = seg_verdict(results)
    assert v.equivariant.startswith("No:") and "more at the aligned shifts" in v.equivariant
    assert any("circular: exactly equivariant: unet_aps_aps" in line for line in v.restores)
    assert any(line.startswith("plain: no U-Net is exactly equivariant") for line in v.restores)
    assert any("the decoder's upsampling (circular)" in line and "more" in line for line in v.where)
    assert c10(results).status == "partly"


def test_verdict_says_exact_when_the_baseline_is_exact_and_c10_is_confirmed():
    levels = {(m, c): EXACT for m in CONFIG.models for c in CONFIG.conditions}
    results = analyse_seg(CONFIG, *_runs(levels))
    assert seg_verdict(results).equivariant.startswith("Yes, exactly")
    assert c10(results).status == "confirmed"


def test_verdict_within_the_margin_and_c10_refuted_or_inconclusive_when_nothing_is_exact():
    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    assert c10(analyse_seg(CONFIG, *_runs(levels))).status == "refuted"
    near_one = {"near": 0.995, "aligned": 0.995, "unaligned": 0.995}
    levels = {(m, c): near_one for m in CONFIG.models for c in CONFIG.conditions}
    close = analyse_seg(CONFIG, *_runs(levels, noise=0.002))
    assert seg_verdict(close).equivariant.startswith("Within the margin 0.02 of it, not exactly:")
    assert c10(close).status == "confirmed"
    levels[("unet_maxpool_transposed", "circular")] = ALIASED  # one condition clearly below 1, the other not
    mixed = analyse_seg(CONFIG, *_runs(levels, noise=0.002))
    assert c10(mixed).status == "inconclusive"


def test_the_verdict_names_the_first_layer_that_adds_error_and_what_reaches_the_logits():
    from dataclasses import replace

    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    records, arrays = _runs(levels)
    layers = [dict(name="encoder.0.0", part="encoder", stride=1, aligned_error=0.0, unaligned_error=None,
                   aligned_interior_error=0.0, unaligned_interior_error=None, origin="equivariant"),
              dict(name="down.0", part="down", stride=2, aligned_error=0.0, unaligned_error=0.3,
                   aligned_interior_error=0.0, unaligned_interior_error=0.3, origin="breaks here: aliasing"),
              dict(name="head", part="head", stride=1, aligned_error=0.12, unaligned_error=None,
                   aligned_interior_error=0.12, unaligned_interior_error=None, origin="inherited")]
    records = [replace(r, layers=layers) if (r.condition, r.seed) == ("circular", 0) else r for r in records]
    lines = [line for line in seg_verdict(analyse_seg(CONFIG, records, arrays)).where if line.startswith("per layer")]
    assert len(lines) == len(CONFIG.models)
    assert lines[0] == ("per layer (circular, seed 0): unet_maxpool_transposed first adds error at down.0 (down, "
                        "aliasing); the relative error of its logits over the profile's shifts 0.12")


def test_the_verdict_says_when_later_layers_undo_an_inner_layers_error():
    """An APS U-Net's inner maps differ from a band-limited shift at unaligned shifts while its logits are exact."""
    from dataclasses import replace

    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    records, arrays = _runs(levels)
    layers = [dict(name="down.0", part="down", stride=2, aligned_error=0.0, unaligned_error=0.4,
                   aligned_interior_error=0.0, unaligned_interior_error=0.4, origin="breaks here: aliasing"),
              dict(name="head", part="head", stride=1, aligned_error=3e-8, unaligned_error=None,
                   aligned_interior_error=3e-8, unaligned_interior_error=None, origin="equivariant")]
    records = [replace(r, layers=layers) if (r.condition, r.seed) == ("circular", 0) else r for r in records]
    lines = [line for line in seg_verdict(analyse_seg(CONFIG, records, arrays)).where if line.startswith("per layer")]
    assert lines[0].startswith("per layer (circular, seed 0): unet_maxpool_transposed departs from a band-limited shift "
                               "first at down.0 (down, aliasing), and later layers undo it")
    assert lines[0].endswith("the relative error of its logits over the profile's shifts 3e-08")


def test_the_mIoU_cost_names_the_budget_and_says_when_the_two_did_not_fit_alike():
    from dataclasses import replace

    levels = {(m, c): ALIASED for m in CONFIG.models for c in CONFIG.conditions}
    levels[("unet_aps_aps", "circular")] = EXACT
    records, arrays = _runs(levels)

    def restored_line(aps_loss: float) -> str:
        history = [{"epoch": 1, "train_loss": aps_loss, "train_acc": 0.99, "seconds": 1.0}]
        runs = [replace(r, history=history) if r.model == "unet_aps_aps" else r for r in records]
        return next(line for line in seg_verdict(analyse_seg(CONFIG, runs, arrays)).restores
                    if line.startswith("circular"))

    alike = restored_line(0.15)  # the baseline's last loss is 0.1
    assert f"at the budget of {CONFIG.epochs} epochs, whose last training loss is 0.15 against 0.1" in alike
    assert "fits the training scenes less" not in alike
    apart = restored_line(0.45)
    assert apart.endswith("whose last training loss is 0.45 against 0.1 (4.5x: it fits the training scenes less "
                          "in the budget, so part of the mIoU difference may be fit rather than architecture)")
