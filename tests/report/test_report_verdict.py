"""The verdict is computed from the numbers: contrasting synthetic results change it."""

from __future__ import annotations

import json

import pytest

from shiftlab.report import Verdict, verdict
from shiftlab.report.verdict import STATUSES


def _status(results: dict, claim: str) -> str:
    return verdict(results).claim(claim).status


def test_verdict_has_all_claims_with_valid_status(synth):
    v = verdict(synth())
    assert isinstance(v, Verdict)
    assert [c.id for c in v.claims] == [f"C{i}" for i in range(1, 8)]
    assert all(c.status in STATUSES and c.evidence and c.text for c in v.claims)
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d["answer"] == v.answer and len(d["claims"]) == 7 and "CONSISTENCY_MARGIN" in d["thresholds"]


def test_answer_follows_fcn_vs_maxpool_consistency(synth):
    same = verdict(synth(fcn_consistency=0.90, maxpool_consistency=0.90))
    less = verdict(synth(fcn_consistency=0.70, maxpool_consistency=0.90))
    more = verdict(synth(fcn_consistency=0.95, maxpool_consistency=0.80))
    assert same.numbers["fcn_is"] == "about as" and "about as translation invariant as" in same.answer
    assert less.numbers["fcn_is"] == "less" and "less translation invariant than" in less.answer
    assert more.numbers["fcn_is"] == "more" and "more translation invariant than" in more.answer
    assert less.answer.startswith("No.") and not same.answer.startswith("No.")
    # the numbers themselves are in the answer
    assert "0.700 vs 0.900" in less.answer and "0.900 vs 0.900" in same.answer


def test_answer_reports_flip_rates_only_when_predictions_flip(synth):
    assert "1-pixel shift changes" in verdict(synth(maxpool_flip_rate=0.05)).answer
    # the FCN flip rate of the synthetic data is 0.1, so the sentence stays but names the max-pool rate
    assert "0.0% of the predictions of the max-pool" in verdict(synth(maxpool_flip_rate=0.0)).answer


def test_c1_border_interior(synth):
    assert _status(synth(border_error=0.05, interior_error=1e-7), "C1") == "partly"
    assert _status(synth(border_error=1e-7, interior_error=1e-7), "C1") == "confirmed"
    assert _status(synth(border_error=0.05, interior_error=0.01), "C1") == "refuted"
    ev = verdict(synth(border_error=0.05)).claim("C1").evidence
    assert "5.0e-02" in ev and "interior" in ev and "aps_gap" in ev  # aps_gap has circular padding: exact


def test_c2_aliasing(synth):
    assert _status(synth(aliasing=0.3), "C2") == "confirmed"
    assert _status(synth(aliasing=1e-6), "C2") == "refuted"  # no larger error at unaligned shifts
    assert _status(synth(aliasing=0.3, interior_error=1e-3, border_error=1e-3), "C2") == "refuted"  # aligned not exact


def test_c3_follows_aps_circular_consistency(synth):
    good = verdict(synth(aps_circular=1.0)).claim("C3")
    bad = verdict(synth(aps_circular=0.8)).claim("C3")
    assert good.status == "confirmed" and "aps_gap" in good.evidence and "1.000000" in good.evidence
    assert bad.status != "confirmed"
    assert bad.numbers["exact_models"] == []
    # the answer mentions exact invariance only when it was measured
    assert "(consistency 1 in every seed): aps_gap." in verdict(synth(aps_circular=1.0)).answer
    assert "consistency 1 in every seed" not in verdict(synth(aps_circular=0.8)).answer


def test_c4_periodicity(synth):
    assert _status(synth(aligned_agreement=1.0, unaligned_agreement=0.85), "C4") == "confirmed"
    assert _status(synth(aligned_agreement=0.95, unaligned_agreement=0.85), "C4") == "partly"
    assert _status(synth(aligned_agreement=0.85, unaligned_agreement=0.85), "C4") == "refuted"
    # a shift range that never reaches a multiple of the total stride cannot test it
    c4 = verdict(synth(max_shift=1)).claim("C4")
    assert c4.status == "not measured" and "max_shift" in c4.evidence


def test_c5_maxpool_invariance(synth):
    assert _status(synth(maxpool_consistency=0.90, fcn_consistency=0.80, maxpool_flip_rate=0.05), "C5") == "partly"
    assert _status(synth(maxpool_consistency=0.90, fcn_consistency=0.80, maxpool_flip_rate=0.0), "C5") == "confirmed"
    # max-pool no more consistent than the strided trunk with the same head (gain = mp - fcn - delta/2 = 0)
    assert _status(synth(maxpool_consistency=0.75, fcn_consistency=0.80, fc_head_delta=-0.1), "C5") == "refuted"


def test_c6_follows_fc_vs_gap(synth):
    below = verdict(synth(fc_head_delta=-0.10)).claim("C6")
    above = verdict(synth(fc_head_delta=+0.10)).claim("C6")
    assert below.status == "confirmed" and above.status == "refuted"
    assert below.evidence != above.evidence


def test_c7_sources_and_performance(synth):
    big_aug = verdict(synth(augmentation_effect=0.30, maxpool_consistency=0.70, fcn_consistency=0.65))
    no_aug = verdict(synth(augmentation_effect=0.0))
    worse = verdict(synth(augmentation_effect=0.0, fcn_accuracy=0.70, maxpool_accuracy=0.90))
    assert big_aug.claim("C7").numbers["largest_source"] == "augmentation"
    assert big_aug.claim("C7").status == "confirmed"
    assert no_aug.claim("C7").numbers["largest_source"] != "augmentation"
    assert no_aug.claim("C7").numbers["consistency_gain"]["augmentation"] == pytest.approx(0.0, abs=1e-9)
    assert worse.claim("C7").status == "refuted"  # not as accurate, and max-pooling is the largest source
    assert "they perform as well" in big_aug.answer and "do not perform as well" in worse.answer
    assert "The largest source is augmentation" in big_aug.answer


def test_single_condition_and_missing_families(synth):
    only_centred = verdict(synth(conditions=("centred",)))
    assert only_centred.claim("C7").numbers["consistency_gain"]["augmentation"] is None
    no_fcn = verdict(synth(models=("maxpool_fc", "maxpool_gap", "aps_gap")))
    assert "cannot be answered" in no_fcn.answer
    assert no_fcn.claim("C5").status == "not measured" and no_fcn.claim("C7").status == "not measured"


def test_constant_classifiers_do_not_count_as_exactly_invariant(synth):
    results = synth(aps_circular=1.0)
    for run in results["runs"]:
        if run["model"] == "aps_gap":
            run["test_accuracy"] = 0.1  # 10 classes: chance
    c3 = verdict(results).claim("C3")
    assert c3.status != "confirmed" and c3.numbers["at_chance_models"] == ["aps_gap"]
    assert "chance" in c3.evidence
    results = synth(fcn_accuracy=0.1)
    assert "Caution: fcn_gap" in verdict(results).answer
