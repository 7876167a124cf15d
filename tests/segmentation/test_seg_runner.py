"""The segmentation study end to end (shiftlab.segmentation.runner, ``shiftlab study --task
segmentation``, ``shiftlab report``): a tiny study runs, resumes without redoing a run, refuses a
changed config and a damaged record, and its report is rebuilt from results.json alone."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from shiftlab.cli.main import build_parser, main
from shiftlab.cli.segment_study import seg_config_from_args
from shiftlab.segmentation.config import SegStudyConfig
from shiftlab.segmentation.runner import rebuild_seg_report, run_seg_study, seg_results_in
from shiftlab.study.records import RecordError

TINY = SegStudyConfig.preset("quick")


def test_a_tiny_study_writes_every_run_the_results_and_the_report(seg_study):
    out, results, done = seg_study
    assert [d[1:] for d in done] == [(i, 8) for i in range(1, 9)]
    assert len(results.runs) == 8 and len(results.cells) == 4
    for run in results.runs:
        assert len(run.history) == TINY.epochs and run.params > 0 and run.macs > 0
        assert (run.layers != []) == (run.seed == 0)
        with np.load(out / "runs" / f"{run.key}.npz") as arrays:
            assert arrays["agreement"].shape == (TINY.n_test, len(run.shifts))
            assert arrays["counts_centre"].shape == (TINY.n_test, len(results.classes), 3)
    html = (out / "report.html").read_text()
    for section in ("question", "answer", "cells", "figures", "comparisons", "layers", "training", "claims", "methods"):
        assert f"<section id={section}>" in html
    assert "quick preset" in html and "Claim C10" in html
    assert "<td class=l>object agreement</td>" in html and "<td class=l>object_massc</td>" not in html
    # the exact APS U-Net (circular): its APS-D maps depart from a band-limited shift, undone by APS-U
    aps = next(r for r in results.runs if r.model == "unet_aps_aps" and r.condition == "circular" and r.seed == 0)
    assert aps.layers[-1]["aligned_error"] < 1e-5
    assert "departs at down.0.aps" in html
    maxpool = next(r for r in results.runs if r.model == "unet_maxpool_transposed" and r.condition == "circular"
                   and r.seed == 0)
    assert maxpool.layers[-1]["aligned_error"] > 1e-3 and "breaks at down.0" in html
    payload = json.loads((out / "results.json").read_text())
    assert payload["task"] == "segmentation" and len(payload["runs"]) == 8


def test_the_report_is_rebuilt_from_results_json_alone(seg_study, tmp_path, capsys):
    out, results, _ = seg_study
    copy = tmp_path / "published"
    copy.mkdir()
    shutil.copy(out / "results.json", copy / "results.json")
    back = seg_results_in(copy)
    assert back is not None and back.cells == results.cells and back.comparisons == results.comparisons
    assert rebuild_seg_report(copy).read_text() == (out / "report.html").read_text()
    assert main(["report", str(copy), "--verdict-only"]) == 0
    assert "C10:" in capsys.readouterr().out


def test_resume_redoes_nothing_and_a_changed_config_or_damaged_record_is_refused(seg_study, tmp_path):
    out, results, _ = seg_study
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    done = []
    again = run_seg_study(TINY, copy, resume=True, on_job=lambda key, i, n: done.append(key))
    assert done == ["(finished before)"] and again.cells == results.cells
    with pytest.raises(FileExistsError, match="--resume"):
        run_seg_study(TINY, copy)
    with pytest.raises(ValueError, match="another config"):
        run_seg_study(SegStudyConfig.preset("quick", seeds=3), copy, resume=True)
    (copy / "runs" / f"{results.runs[0].key}.json").write_text("{\"key\": 1}")
    with pytest.raises(RecordError, match="delete"):
        run_seg_study(TINY, copy, resume=True)


def test_cli_options_map_to_the_config_and_classification_options_are_refused():
    parse = lambda *argv: build_parser().parse_args(["study", "--task", "segmentation", *argv])  # noqa: E731
    assert seg_config_from_args(parse()) == SegStudyConfig()
    assert seg_config_from_args(parse("--quick", "--seeds", "3")) == SegStudyConfig.preset("quick", seeds=3)
    cfg = seg_config_from_args(parse("--models", "unet_aps_aps", "--conditions", "circular", "--max-epochs", "4",
                                     "--data", "fashion-mnist", "--n-train", "500"))
    assert cfg == SegStudyConfig(models=("unet_aps_aps",), conditions=("circular",), epochs=4, data="fashion-mnist",
                                 n_train=500)
    with pytest.raises(ValueError, match="--shift-set, --n-eval belong"):
        seg_config_from_args(parse("--n-eval", "10", "--shift-set", "residues"))


def test_the_cli_runs_a_study_and_logs_each_finished_run(tmp_path, capsys):
    argv = ["study", "--task", "segmentation", "--quick", "--models", "unet_maxpool_transposed", "--conditions",
            "plain", "--seeds", "1", "--workers", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    out = capsys.readouterr().out  # not a terminal: a plain line per finished run
    assert re.search(r"^\[1/1\] unet_maxpool_transposed__plain__seed0 done; [0-9.]+ s elapsed$", out, re.M)
    assert re.search(r"^1 run in [0-9]+ s; results in ", out, re.M) and "claim C10:" in out
    assert (tmp_path / "run" / "report.html").exists()


def test_an_unknown_dataset_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        run_seg_study(SegStudyConfig.preset("quick", data="mnist"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
