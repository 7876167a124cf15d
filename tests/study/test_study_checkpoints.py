"""A study resumed over a damaged checkpoint trains that model again instead of stopping, and
a damaged config.json is named with the way forward (``docs/reliability.md``)."""

from __future__ import annotations

import json

import pytest

from shiftlab.study.config import StudyConfig
from shiftlab.study.job import Job, record_paths
from shiftlab.study.runner import run_study

ONE = dict(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1, max_epochs=2, n_train=200,
           n_test=60, n_eval=8, n_profile=2, n_boot=50, width=4, target_accuracy=0.99)


def numbers(results) -> list[dict]:
    return [{"summary": r.summary, "train": [row["train_acc"] for row in r.training.history]} for r in results.runs]


@pytest.mark.parametrize("damage", [b"random bytes, not a checkpoint", b""])
def test_a_damaged_checkpoint_is_set_aside_and_the_model_trained_again(tmp_path, damage):
    config = StudyConfig(**ONE)
    first = run_study(config, tmp_path, workers=1)
    key = Job("strided_gap", "centred", 0).key
    checkpoint = tmp_path / "checkpoints" / key / "checkpoint.pt"
    checkpoint.write_bytes(damage)
    record_paths(tmp_path, key)[0].unlink()  # the run is unfinished again: its checkpoint will be read
    with pytest.warns(UserWarning, match=rf"{key}: cannot read checkpoint .* moved to .*checkpoint.pt.damaged; "
                                         "training this model again from the start"):
        again = run_study(config, tmp_path, resume=True, workers=1)
    assert numbers(again) == numbers(first)
    assert checkpoint.with_name("checkpoint.pt.damaged").read_bytes() == damage
    assert checkpoint.is_file()  # the new training's checkpoint


@pytest.mark.parametrize("content, why", [(b"\xa1\xff\x00", "codec can't decode"), (b"[1, 2]", "must be a JSON object"),
                                          (b'{"width": "16"', "Expecting"), (b'{"width": "16"}', "width must be int")])
def test_a_damaged_config_json_is_named_with_the_way_forward(tmp_path, content, why):
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ValueError, match=rf"config.json is damaged \(.*{why}.*\); delete it \(the runs are kept\) and "
                                         "resume again"):
        run_study(StudyConfig(**ONE), tmp_path, resume=True, workers=1)
    assert (tmp_path / "config.json").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == ["config.json"]  # nothing written


def test_an_empty_config_json_is_the_default_config_and_named_as_different(tmp_path):
    """``{}`` reads as every default (fields added since a run was made take their defaults)."""
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"--resume with a different configuration than .*config.json \(differs in: .*models"):
        run_study(StudyConfig(**ONE), tmp_path, resume=True, workers=1)


def test_the_config_after_deleting_a_damaged_one_resumes_the_kept_runs(tmp_path):
    config = StudyConfig(**ONE)
    first = run_study(config, tmp_path, workers=1)
    (tmp_path / "config.json").write_text("{")
    (tmp_path / "config.json").unlink()
    again = run_study(config, tmp_path, resume=True, workers=1)
    assert numbers(again) == numbers(first)
    assert json.loads((tmp_path / "config.json").read_text()) == config.to_dict()
