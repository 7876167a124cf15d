"""``shiftlab study`` command line: options, early errors, interruption."""

from __future__ import annotations

import argparse
import re

import pytest

import shiftlab.cli.study as study_cli
from shiftlab.cli.main import build_parser, main
from shiftlab.study.config import StudyConfig


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["study", *argv])


def test_options_map_to_the_config():
    cfg = study_cli.config_from_args(parse("--models", "strided_gap, maxpool_fc", "--seeds", "2", "--max-epochs", "3",
                                           "--conditions", "centred,probe", "--data", "digits", "--width", "32",
                                           "--target-accuracy", "0.9", "--n-eval", "100"))
    assert cfg == StudyConfig(data="digits", models=("strided_gap", "maxpool_fc"), seeds=2, max_epochs=3,
                              conditions=("centred", "probe"), width=32, target_accuracy=0.9, n_eval=100)
    assert study_cli.config_from_args(parse("--quick", "--seeds", "3")) == StudyConfig.preset("quick", seeds=3)
    assert study_cli.config_from_args(parse("--preset", "quick")) == StudyConfig.preset("quick")
    full = study_cli.config_from_args(parse("--preset", "full", "--data", "fashion-mnist"))
    assert full.seeds == 5 and len(full.models) == 18 and full.data == "fashion-mnist"
    assert full.param_matched == ("allconv_gap",) and not full.stop_at_target and full.schedule == "cosine"
    assert study_cli.config_from_args(parse()) == StudyConfig()
    second = study_cli.config_from_args(parse("--stop-at-target", "--schedule", "constant", "--param-matched", "allconv_gap",
                                              "--lr", "0.003", "--shift-set", "residues"))
    assert second == StudyConfig(stop_at_target=True, schedule="constant", param_matched=("allconv_gap",), lr=0.003,
                                 shift_set="residues")
    fashion = study_cli.config_from_args(parse("--data", "fashion-mnist", "--n-train", "4000", "--n-test", "1000"))
    assert (fashion.n_train, fashion.n_test) == (4000, 1000)
    assert study_cli.config_from_args(parse("--quick")).n_train == 1000  # the preset's cap stays unless given


@pytest.mark.parametrize("option", ["--n-train", "--n-test"])
def test_an_image_cap_below_one_is_a_clear_error(option, tmp_path, capsys):
    assert main(["study", option, "0", "--out", str(tmp_path / "run")]) == 2
    assert f"{option[2:].replace('-', '_')} must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_help_explains_presets_and_workers(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    text = capsys.readouterr().out
    for word in ("--preset", "--workers", "--width", "inconclusive", "quick", "full"):
        assert word in text


def test_unknown_model_is_a_clear_error(capsys):
    assert main(["study", "--models", "resnet", "--out", "unused"]) == 2
    assert "unknown model(s) ['resnet']" in capsys.readouterr().err


def test_existing_run_dir_fails_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(study_cli, "run_study", lambda *a, **k: pytest.fail("must not start"))
    assert main(["study", "--out", str(tmp_path)]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_interruption_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_cli, "run_study", interrupted)
    assert main(["study", "--out", str(tmp_path / "run")]) == 130
    assert "rerun with --resume" in capsys.readouterr().err


def test_a_dataset_typo_fails_and_leaves_no_run_directory_behind(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["study", "--data", "mnist", "--out", str(out)]) == 2
    assert "unknown dataset 'mnist'" in capsys.readouterr().err
    assert not (out / "config.json").exists()


def test_zero_workers_is_a_clear_error(tmp_path, capsys):
    assert main(["study", "--workers", "0", "--out", str(tmp_path / "run")]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err


def test_resume_with_a_larger_max_epochs_says_what_trains_on_and_a_smaller_one_is_refused(tmp_path, capsys):
    tiny = ["--quick", "--data", "digits", "--models", "maxpool_fc", "--conditions", "centred", "--seeds", "1",
            "--n-eval", "8", "--workers", "1", "--no-report", "--target-accuracy", "0.99", "--stop-at-target",
            "--schedule", "constant", "--out", str(tmp_path)]
    assert main(["study", *tiny, "--max-epochs", "1"]) == 0
    # captured output is not a terminal: a plain line per finished job (rich draws no bars there)
    assert re.search(r"^\[1/1\] maxpool_fc__centred__seed0 done; [0-9.]+ s elapsed$", capsys.readouterr().out, re.M)
    assert main(["study", *tiny, "--max-epochs", "2", "--resume"]) == 0
    assert "--max-epochs 2 (the run directory had 1): the runs that stopped at 1 epoch" in capsys.readouterr().out
    assert main(["study", *tiny, "--max-epochs", "1", "--resume"]) == 2
    assert "only a larger --max-epochs than 2" in capsys.readouterr().err
