"""A study that fails to start leaves nothing that blocks the corrected command (no --resume, no
deleting the run directory by hand)."""

from __future__ import annotations

import json

import pytest

import shiftlab.study.runner as runner
from shiftlab.cli.main import main
from shiftlab.study.config import StudyConfig
from shiftlab.study.runner import check_run_dir, run_study

#: A tiny study on the bundled digits: one model, one condition, one seed, one epoch.
TINY = ["--quick", "--data", "digits", "--models", "strided_gap", "--conditions", "centred", "--seeds", "1",
        "--max-epochs", "1", "--n-eval", "8", "--workers", "1", "--no-report"]


def tiny_config(**overrides) -> StudyConfig:
    fields = dict(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1, max_epochs=1, n_eval=8)
    return StudyConfig.preset("quick", **{**fields, **overrides})


def assert_nothing_blocks(out) -> None:
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    check_run_dir(tiny_config(), out, resume=False)  # a fresh start is accepted


def test_unknown_dataset_writes_nothing_and_the_corrected_command_runs(tmp_path, capsys):
    out = tmp_path / "X"
    assert main(["study", "--data", "mnist", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'mnist'" in err and len(err.strip().splitlines()) == 1
    assert_nothing_blocks(out)
    assert main(["study", *TINY, "--out", str(out)]) == 0  # no --resume, nothing deleted by hand
    assert (out / "results.json").is_file()


def test_missing_dataset_files_write_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "X"
    assert main(["study", "--data", "idx", "--data-root", str(empty), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err
    assert_nothing_blocks(out)


def test_a_job_failing_before_any_run_finished_removes_what_the_start_wrote(tmp_path, monkeypatch, capsys):
    def fails(*args, **kwargs):
        (tmp_path / "X" / "checkpoints" / "some_key").mkdir(parents=True)  # as a job that began training
        raise ValueError("the canvas allows shifts up to 2 px")

    monkeypatch.setattr(runner, "run_job", fails)
    out = tmp_path / "X"
    assert main(["study", *TINY, "--out", str(out)]) == 2
    assert "the canvas allows shifts" in capsys.readouterr().err
    assert_nothing_blocks(out)
    monkeypatch.undo()
    assert main(["study", *TINY, "--out", str(out)]) == 0


def test_a_failed_start_keeps_what_was_there_before(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    (out / "runs").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "runs" / "other.json").write_text("{}")
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        run_study(tiny_config(), out, workers=1)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "runs"]
    assert (out / "runs" / "other.json").read_text() == "{}"
    check_run_dir(tiny_config(), out, resume=False)


def test_a_failure_after_a_finished_run_keeps_the_study_for_resume(tmp_path, monkeypatch):
    config = tiny_config(seeds=2)
    calls = []
    real = runner.run_job

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_job", second_fails)
    out = tmp_path / "X"
    with pytest.raises(ValueError, match="boom"):
        run_study(config, out, workers=1)
    assert json.loads((out / "config.json").read_text()) == config.to_dict()
    assert len(list((out / "runs").glob("*.json"))) == 1
    with pytest.raises(FileExistsError, match="pass --resume"):
        check_run_dir(config, out, resume=False)


def test_a_failed_resume_removes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "X"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(tiny_config().to_dict()))
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom")))
    with pytest.raises(ValueError):
        run_study(tiny_config(), out, resume=True, workers=1)
    assert (out / "config.json").is_file()


def test_a_failure_after_an_epoch_was_checkpointed_keeps_it_for_resume(tmp_path, monkeypatch):
    from shiftlab.study import job as job_module

    real_train = job_module._train

    def train_then_fail(*args, **kwargs):
        real_train(*args, **kwargs)  # writes checkpoints/KEY/checkpoint.pt
        raise RuntimeError("measurement failed")

    monkeypatch.setattr(job_module, "_train", train_then_fail)
    out = tmp_path / "run"
    assert main(["study", *TINY, "--workers", "1", "--out", str(out)]) == 2
    assert (out / "config.json").exists() and list((out / "checkpoints").rglob("checkpoint.pt"))
