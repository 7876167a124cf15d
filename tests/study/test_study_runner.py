"""The study runner on real digits: run directory, typed records, identical results for any
worker count, resume after an interruption, damaged records redone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from shiftlab.study.config import StudyConfig
from shiftlab.study.job import Job, record_paths
from shiftlab.study.records import load_per_image
from shiftlab.study.results import load_results
from shiftlab.study.runner import jobs_of, run_study

TINY = dict(data="digits", models=("strided_gap", "maxpool_fc"), conditions=("centred", "augmented"), seeds=2,
            max_epochs=2, n_train=300, n_test=100, n_eval=12, n_profile=4, n_boot=100, width=4, target_accuracy=0.5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(StudyConfig(**TINY), out, workers=1)


def test_run_directory_holds_config_records_results_csv_and_checkpoints(tiny_run):
    out, results = tiny_run
    assert json.loads((out / "config.json").read_text()) == StudyConfig(**TINY).to_dict()
    assert load_results(out).to_dict() == json.loads(json.dumps(results.to_dict()))
    assert (out / "results.json").read_text().count("\n") == 1  # compact: a full run stays publishable
    assert [(r.model, r.condition, r.seed) for r in results.runs] == [
        (j.model, j.condition, j.seed) for j in jobs_of(StudyConfig(**TINY))]
    for r in results.runs:
        assert (out / "checkpoints" / r.key / "checkpoint.pt").is_file()
        assert (r.downsampling, r.head) == {"strided_gap": ("strided", "gap"), "maxpool_fc": ("maxpool", "fc")}[r.model]
        assert 1 <= r.training.epochs <= TINY["max_epochs"] and len(r.training.history) == r.training.epochs
        assert r.training.converged == (r.training.final_train_accuracy >= TINY["target_accuracy"])
        arrays = load_per_image(record_paths(out, r.key)[1])
        assert arrays["consistency"].shape == (TINY["n_eval"],)
        assert r.summary["consistency"] == pytest.approx(arrays["consistency"].mean())
        assert r.receptive_field == {"strided_gap": 15, "maxpool_fc": 22}[r.model] and r.macs > 0


def test_analysis_has_a_cell_per_model_and_condition_with_intervals(tiny_run):
    _, results = tiny_run
    cells = {(c.model, c.condition): c for c in results.analysis.cells}
    assert set(cells) == {(m, c) for m in TINY["models"] for c in TINY["conditions"]}
    for cell in cells.values():
        ci = cell.metrics["consistency"]
        assert ci.low <= ci.estimate <= ci.high and cell.n_seeds == 2 and cell.n_images == TINY["n_eval"]
        runs = [r for r in results.runs if r.model == cell.model and r.condition == cell.condition]
        assert ci.estimate == pytest.approx(np.mean([r.summary["consistency"] for r in runs]))
    fcn_vs_classic = results.analysis.comparison("fcn_vs_classic", "centred", "consistency")
    a, b = cells[("strided_gap", "centred")], cells[("maxpool_fc", "centred")]
    want = a.metrics["consistency"].estimate - b.metrics["consistency"].estimate
    assert fcn_vs_classic.interval.estimate == pytest.approx(want)


def test_csv_is_tidy_and_pandas_reads_it(tiny_run):
    out, results = tiny_run
    frame = pd.read_csv(out / "results.csv")
    assert len(frame) == sum(len(r.profile.shifts) for r in results.runs)
    assert set(frame["model"]) == set(TINY["models"]) and set(frame["head"]) == {"gap", "fc"}
    assert frame["accuracy"].between(0, 1).all()


def test_two_workers_give_identical_results(tiny_run, tmp_path):
    _, one = tiny_run
    two = run_study(StudyConfig(**TINY), tmp_path, workers=2)
    assert two.meta.workers == 2
    assert two.measurements() == one.measurements()


def test_existing_study_needs_resume_and_the_same_config(tiny_run, tmp_path):
    out, _ = tiny_run
    with pytest.raises(FileExistsError, match="--resume"):
        run_study(StudyConfig(**TINY), out)
    with pytest.raises(ValueError, match="differs in: seeds"):
        run_study(StudyConfig(**{**TINY, "seeds": 3}), out, resume=True)


def test_interrupted_study_resumes_to_the_same_numbers(tiny_run, tmp_path):
    _, full = tiny_run
    config = StudyConfig(**TINY)
    calls = []

    def stop_after_two(key, done, total):
        calls.append(key)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(config, tmp_path, workers=1, on_job=stop_after_two)
    finished = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    assert len(finished) == 2
    resumed = run_study(config, tmp_path, resume=True, workers=1)
    assert resumed.measurements() == full.measurements()
    # the wall time covers both sessions, and the first start is kept
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert resumed.meta.sessions == timing["sessions"] == 2 and resumed.meta.started == timing["started"]
    assert resumed.meta.seconds == timing["seconds"] > 0
    assert not list(tmp_path.rglob("*.tmp*"))


def test_a_damaged_record_is_redone_on_resume(tiny_run, tmp_path):
    out, full = tiny_run
    config = StudyConfig(**{**TINY, "conditions": ("centred",), "seeds": 1})
    first = run_study(config, tmp_path, workers=1)
    key = Job("strided_gap", "centred", 0).key
    json_path, npz_path = record_paths(tmp_path, key)
    json_path.write_text("{}")
    npz_path.write_bytes(b"not an npz")
    again = run_study(config, tmp_path, resume=True, workers=1)
    assert again.measurements() == first.measurements()


def test_a_larger_max_epochs_on_resume_trains_on_only_the_runs_that_stopped_short(tmp_path):
    # the second design (stop at the target, constant learning rate): after one epoch strided_gap has
    # training accuracy 0.23 (reaches 0.2), maxpool_fc 0.16 (does not)
    base = {**TINY, "conditions": ("centred",), "seeds": 1, "target_accuracy": 0.2, "stop_at_target": True,
            "schedule": "constant", "lr": 3e-3}
    first = run_study(StudyConfig(**{**base, "max_epochs": 1}), tmp_path / "a", workers=1)
    converged = {r.model: r.training.converged for r in first.runs}
    assert converged == {"strided_gap": True, "maxpool_fc": False}
    kept = record_paths(tmp_path / "a", Job("strided_gap", "centred", 0).key)[0].read_bytes()
    extended = run_study(StudyConfig(**{**base, "max_epochs": 3}), tmp_path / "a", resume=True, workers=1)
    fresh = run_study(StudyConfig(**{**base, "max_epochs": 3}), tmp_path / "b", workers=1)
    assert record_paths(tmp_path / "a", Job("strided_gap", "centred", 0).key)[0].read_bytes() == kept
    assert extended.measurements() == fresh.measurements()
    curves = [[(row["train_acc"], row["train_loss"]) for row in r.training.history] for r in (extended.runs[1], fresh.runs[1])]
    assert curves[0] == curves[1] and len(curves[0]) > 1  # maxpool_fc trained on from its first epoch's checkpoint
    assert json.loads((tmp_path / "a" / "config.json").read_text())["max_epochs"] == 3
    with pytest.raises(ValueError, match="differs in: max_epochs.*only a larger --max-epochs than 3"):
        run_study(StudyConfig(**{**base, "max_epochs": 2}), tmp_path / "a", resume=True, workers=1)


def test_a_fixed_budget_trains_every_run_to_the_end_and_cannot_grow_on_resume(tmp_path):
    base = {**TINY, "conditions": ("centred",), "seeds": 1, "target_accuracy": 0.2, "max_epochs": 2}
    results = run_study(StudyConfig(**base), tmp_path, workers=1)
    assert [len(r.training.history) for r in results.runs] == [2, 2]  # both reach 0.2 after one epoch, and train on
    assert all(not r.training.stopped_at_target and not r.training.stopped_short(5) for r in results.runs)
    with pytest.raises(ValueError, match=r"differs in: max_epochs\); use the same options \(--max-epochs 2: under a fixed "
                                         r"budget the epochs are part of every model's learning-rate schedule\) or another"):
        run_study(StudyConfig(**{**base, "max_epochs": 3}), tmp_path, resume=True, workers=1)


def test_parameter_matched_runs_are_trained_at_the_matched_width_and_paired(tmp_path):
    config = StudyConfig(**{**TINY, "models": ("allconv_gap", "maxpool_gap", "maxpool_fc"), "conditions": ("centred",),
                            "seeds": 1, "width": 16, "max_epochs": 1, "param_matched": ("allconv_gap",)})
    assert [j.key for j in jobs_of(config)][-1] == "allconv_gap__centred__w9__seed0"
    results = run_study(config, tmp_path, workers=1)
    a = results.analysis
    assert [(c.model, c.width, c.params) for c in a.matched] == [("allconv_gap", 9, 23_428)]
    assert [c.model for c in a.cells] == ["allconv_gap", "maxpool_gap", "maxpool_fc"]  # the main width only
    pair = a.matched_comparison("allcnn_vs_maxpool_gap", "test_accuracy")
    assert (pair.a, pair.b) == ("allconv_gap|centred|w9", "maxpool_gap|centred|w16")
    matched, reference = a.matched_cell("allconv_gap"), a.cell("maxpool_gap", "centred")
    assert pair.interval.estimate == pytest.approx(matched.metrics["test_accuracy"].estimate
                                                   - reference.metrics["test_accuracy"].estimate)
    assert {c.label for c in a.matched_comparisons} == {"allcnn_vs_classic|matched", "allcnn_vs_maxpool_gap|matched"}
    from shiftlab.report import verdict

    text = verdict(results).answer
    assert "At equal parameters (the All-CNN FCN at width 9: 23,428 parameters" in text
    assert "test accuracy against the classic max-pool CNN (maxpool_fc)" in text
    with pytest.raises(ValueError, match="param_matched takes global-pool models"):
        StudyConfig(param_matched=("allconv_fc",))


def test_stopped_short_looks_at_every_phase_and_never_at_a_run_without_target():
    from shiftlab.study.records import TrainingRecord

    def rows(*accs):
        return [{"epoch": i + 1, "train_acc": a, "train_loss": 1.0, "seconds": 0.1} for i, a in enumerate(accs)]

    def record(history, head=(), target=0.9):
        return TrainingRecord(len(history), None, target, 0.0, 0.0, 0.0, history, list(head))

    assert record(rows(0.5, 0.8)).stopped_short(3) and not record(rows(0.5, 0.8)).stopped_short(2)
    assert not record(rows(0.5, 0.95)).stopped_short(5)  # reached the target: finished
    assert record(rows(0.95), head=rows(0.5, 0.6)).stopped_short(3)  # a transfer run's new head stopped short
    assert record(rows(0.5, 0.6), head=rows(0.95)).stopped_short(3)  # ... or its trunk
    assert not record(rows(0.5, 0.6), target=None).stopped_short(10)  # the probe: a fixed number of epochs


def test_capacity_sweep_trains_the_key_models_at_other_widths_and_pairs_them(tmp_path):
    from shiftlab.study.checkpoints import load_study_model

    config = StudyConfig(**{**TINY, "conditions": ("centred",), "seeds": 1, "capacity_widths": (2,),
                            "capacity_models": ("strided_gap", "maxpool_fc")})
    results = run_study(config, tmp_path, workers=1)
    assert sorted((r.key, r.width) for r in results.runs) == [
        ("maxpool_fc__centred__seed0", 4), ("maxpool_fc__centred__w2__seed0", 2),
        ("strided_gap__centred__seed0", 4), ("strided_gap__centred__w2__seed0", 2)]
    a = results.analysis
    assert [(c.model, c.width) for c in a.cells] == [("strided_gap", 4), ("maxpool_fc", 4)]
    assert a.widths == [2, 4]
    small, main = a.capacity_cell("strided_gap", 2), a.capacity_cell("strided_gap", 4)
    assert small.params < main.params == a.cell("strided_gap", "centred").params
    assert main.metrics["consistency"].estimate == pytest.approx(a.cell("strided_gap", "centred").metrics["consistency"].estimate,
                                                                 rel=1e-12)  # the same runs, summed in another order
    assert {c.label for c in a.capacity_comparisons} == {"fcn_vs_classic|w2", "fcn_vs_classic|w4"}
    model = load_study_model(tmp_path / "checkpoints" / "strided_gap__centred__w2__seed0")
    assert model.model.features[0].out_channels == 2


def test_a_run_directory_from_before_the_capacity_fields_still_resumes(tiny_run, tmp_path):
    from shiftlab.study.runner import check_run_dir

    saved = StudyConfig(**TINY).to_dict()
    del saved["capacity_widths"], saved["capacity_models"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    check_run_dir(StudyConfig(**TINY), tmp_path, resume=True)  # the new fields take their defaults
    with pytest.raises(ValueError, match="differs in: capacity_widths"):
        check_run_dir(StudyConfig(**{**TINY, "capacity_widths": (8,)}), tmp_path, resume=True)


def test_job_keys_parse_back_and_the_full_preset_has_every_kind_and_the_matched_all_cnn():
    for job in (Job("strided_gap", "transfer_control", 3), Job("maxpool_fc", "centred", 0, width=32)):
        assert Job.from_key(job.key) == job
    with pytest.raises(ValueError, match="not a study run"):
        Job.from_key("strided_gap")
    full = StudyConfig.preset("full")
    jobs = jobs_of(full)
    assert {j.model.rpartition("_")[0] for j in jobs} == {"strided", "allconv", "maxpool", "avgpool", "blurstrided",
                                                          "learned", "learnedblur", "maxblur", "aps"}
    matched = [j for j in jobs if j.width is not None]
    assert len(jobs) == 18 * 5 * 5 + len(matched) and len(matched) == 5
    assert {(j.model, j.condition, j.width) for j in matched} == {("allconv_gap", "centred", 9)}
    sweep = [j for j in jobs_of(StudyConfig(capacity_widths=(8, 32))) if j.width is not None]
    assert len(sweep) == 2 * 4 * 2 and {j.condition for j in sweep} == {"centred"} and {j.width for j in sweep} == {8, 32}
    # the main width is never trained twice
    assert not [j for j in jobs_of(StudyConfig(capacity_widths=(8, 16))) if j.width == 16]
    with pytest.raises(ValueError, match="capacity_widths"):
        StudyConfig(capacity_widths=(8, 8))
    with pytest.raises(ValueError, match="capacity model"):
        StudyConfig(capacity_widths=(8,), capacity_models=("nope",))


def test_device_is_recorded_and_a_missing_device_fails_before_anything_is_written(tiny_run, tmp_path):
    _, results = tiny_run
    assert results.meta.device == "cpu"  # "auto" without a GPU
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        run_study(StudyConfig(**TINY), tmp_path / "bad", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            run_study(StudyConfig(**TINY), tmp_path / "bad", device="cuda")
    assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_study_on_the_gpu_matches_the_cpu_study_to_rounding(tmp_path):
    config = StudyConfig(**{**TINY, "conditions": ("centred",), "seeds": 1})
    cpu = run_study(config, tmp_path / "cpu", device="cpu", workers=1)
    gpu = run_study(config, tmp_path / "gpu", device="cuda")
    assert gpu.meta.device.startswith("cuda") and gpu.meta.workers == 1
    for a, b in zip(cpu.analysis.cells, gpu.analysis.cells, strict=True):
        assert abs(a.metrics["test_accuracy"].estimate - b.metrics["test_accuracy"].estimate) <= 0.05


def test_a_model_or_condition_listed_twice_is_refused():
    with pytest.raises(ValueError, match="models lists strided_gap more than once"):
        StudyConfig(models=("strided_gap", "maxpool_fc", "strided_gap"))
    with pytest.raises(ValueError, match="conditions lists centred more than once"):
        StudyConfig(conditions=("centred", "centred"))


def test_the_quick_preset_on_any_data_is_a_smoke_test_and_nothing_else_is():
    assert StudyConfig.preset("quick").is_smoke_test and StudyConfig.preset("quick", data="digits").is_smoke_test
    assert not StudyConfig().is_smoke_test and not StudyConfig.preset("quick", seeds=5).is_smoke_test
