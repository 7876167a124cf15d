"""The study runner on real digits: results layout, CSV, resume after an interruption."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from shiftlab.study.config import StudyConfig
from shiftlab.study.measurements import circular_shifts, periodicity, profile_shifts
from shiftlab.study.runner import run_key, run_study
from shiftlab.invariance import InvarianceResult

TINY = dict(data="digits", models=("fcn_gap", "maxpool_fc"), seeds=1, epochs=2, n_train=300, n_test=100, n_eval=12,
            n_circular=8, n_profile=4)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(StudyConfig(**TINY), out)


def test_run_directory_holds_config_results_csv_and_checkpoints(tiny_run):
    out, results = tiny_run
    assert json.loads((out / "config.json").read_text()) == StudyConfig(**TINY).to_dict()
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert {(r["model"], r["condition"]) for r in saved["runs"]} == {
        (m, c) for m in TINY["models"] for c in ("centred", "augmented")
    }
    for r in saved["runs"]:
        assert (out / "checkpoints" / run_key(r["model"], r["condition"], r["seed"]) / "checkpoint.pt").is_file()
        assert len(r["history"]) == TINY["epochs"]
        assert 0.0 <= r["test_accuracy"] <= 1.0
        grid = r["canvas"]["shifts"]
        m = saved["meta"]["max_shift"]
        assert len(grid) == (2 * m + 1) ** 2
        assert len(r["accuracy_by_distance"]) == m + 1
    assert saved["meta"]["canvas_size"][0] % 8 == 0 and saved["meta"]["n_eval"] == TINY["n_eval"]


def test_csv_is_tidy_one_row_per_run_measurement_and_shift(tiny_run):
    out, results = tiny_run
    rows = list(csv.DictReader((out / "results.csv").open()))
    expected = sum(len(r["canvas"]["shifts"]) + len(r["circular"]["shifts"]) for r in results["runs"])
    assert len(rows) == expected
    first = results["runs"][0]
    row = next(r for r in rows if r["model"] == first["model"] and r["condition"] == first["condition"]
               and r["measurement"] == "canvas" and (int(r["dy"]), int(r["dx"])) == (0, 0))
    k = [tuple(s) for s in first["canvas"]["shifts"]].index((0, 0))
    assert float(row["accuracy"]) == pytest.approx(first["canvas"]["accuracy_by_shift"][k], abs=1e-6)
    assert float(row["agreement_with_unshifted"]) == 1.0  # the unshifted image agrees with itself


def test_existing_study_needs_resume_and_the_same_config(tiny_run, tmp_path):
    out, _ = tiny_run
    with pytest.raises(FileExistsError, match="--resume"):
        run_study(StudyConfig(**TINY), out)
    with pytest.raises(ValueError, match="epochs"):
        run_study(StudyConfig(**{**TINY, "epochs": 3}), out, resume=True)


def test_interrupted_study_resumes_to_the_same_numbers(tiny_run, tmp_path):
    _, reference = tiny_run
    out = tmp_path / "interrupted"
    calls = {"n": 0}

    def interrupt_in_second_epoch_of_second_run(event):
        if event.kind == "epoch":
            calls["n"] += 1
        if calls["n"] == TINY["epochs"] + 1 and event.kind == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(StudyConfig(**TINY), out, on_train=interrupt_in_second_epoch_of_second_run)
    assert len(list((out / "runs").glob("*.json"))) == 1  # the first run finished and was saved
    resumed = run_study(StudyConfig(**TINY), out, resume=True)
    strip = lambda runs: [{k: v for k, v in r.items() if k not in ("train_seconds", "history")} for r in runs]
    assert strip(resumed["runs"]) == strip(json.loads(json.dumps(reference["runs"])))
    losses = lambda runs: [[h["train_loss"] for h in r["history"]] for r in runs]
    assert losses(resumed["runs"]) == losses(reference["runs"])


def test_periodicity_groups_agreement_by_residue():
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    # image 0 agrees with the unshifted class only at even shifts; image 1 everywhere
    preds = torch.tensor([[0 if dy % 2 == 0 and dx % 2 == 0 else 1 for dy, dx in shifts], [3] * len(shifts)])
    agree = (preds == preds[:, shifts.index((0, 0))][:, None]).double().mean(dim=0).tolist()
    res = InvarianceResult("zeros", "grid(2)", shifts, 2, 4, 0.0, 0.0, 0.0, 0.0, None, clean_consistency_by_shift=agree)
    p = periodicity(res, 2)
    assert p["aligned"] == 1.0 and p["unaligned"] == 0.5
    assert p["residue_agreement"] == [[1.0, 0.5], [0.5, 0.5]]
    assert p["dx_values"] == [-2, -1, 0, 1, 2] and p["agreement_by_dx"] == [1.0, 0.5, 1.0, 0.5, 1.0]


def test_shift_sets_of_the_study():
    prof = profile_shifts(8, 40).as_tuples()
    assert {(0, 8), (8, 8), (0, 4), (0, 1), (0, 16), (16, 16)} <= set(prof)
    assert max(max(abs(a), abs(b)) for a, b in profile_shifts(8, 16).as_tuples()) == 8
    circ = circular_shifts((16, 16), 10, seed=1)
    assert len(circ) == 10 and circ.as_tuples()[0] == (0, 0)
    assert all(0 <= dy < 16 and 0 <= dx < 16 for dy, dx in circ.as_tuples())


def test_pandas_reads_the_csv_and_the_json(tiny_run):
    pd = pytest.importorskip("pandas")  # installed with mlxtend
    out, results = tiny_run
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["measurement"]) == {"canvas", "circular"}
    assert frame["accuracy"].between(0, 1).all() and frame["dy"].dtype.kind == "i"
    runs = pd.json_normalize(json.loads((out / "results.json").read_text())["runs"])
    assert len(runs) == len(results["runs"]) and "canvas.consistency" in runs.columns
