"""The methods section's rebuild command (``shiftlab.report.methods.study_command``): parsed by the
real ``shiftlab study`` parser, it gives back the very config it was written from."""

from __future__ import annotations

import shlex

import pytest

from shiftlab.cli.main import build_parser
from shiftlab.cli.study import config_from_args
from shiftlab.report.methods import study_command
from shiftlab.study.config import StudyConfig

CONFIGS = {
    "default": StudyConfig(),
    "quick": StudyConfig.preset("quick"),
    # the published Fashion-MNIST full run (README): caps on the data sizes and a lower target
    "fashion full": StudyConfig.preset("full", data="fashion-mnist", n_train=4000, n_test=1000,
                                       target_accuracy=0.9, max_epochs=40),
    "no capacity sweep": StudyConfig.preset("full", capacity_widths=()),
    "a chosen sweep": StudyConfig(capacity_widths=(8, 24), width=12, seeds=2),
    "a subset": StudyConfig(models=("strided_gap", "maxpool_fc"), conditions=("centred", "probe"), n_eval=64),
    "a path with a space": StudyConfig(data="idx", data_root="/data/my digits"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_the_command_parses_back_to_the_same_config(name):
    config = CONFIGS[name]
    command, note = study_command(config.to_dict(), "runs/my run")
    assert note == ""
    argv = shlex.split(command)
    assert argv[:2] == ["shiftlab", "study"]
    args = build_parser().parse_args(argv[1:])
    assert config_from_args(args) == config
    assert args.out == "runs/my run"


def test_the_shortest_command_is_given():
    command, _ = study_command(CONFIGS["fashion full"].to_dict(), "runs/fashion")
    assert command == ("shiftlab study --preset full --data fashion-mnist --max-epochs 40 --target-accuracy 0.9 "
                       "--n-train 4000 --n-test 1000 --out runs/fashion")


def test_a_field_without_an_option_gives_the_python_call_and_names_only_that_field():
    config = StudyConfig.preset("full", data="fashion-mnist", n_train=4000, n_boot=500)
    command, note = study_command(config.to_dict(), "runs/x")
    assert "run_study(StudyConfig.from_dict" in command
    assert note == "n_boot cannot be set on the command line; run it from Python with this config"
