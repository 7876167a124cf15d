"""``shiftlab measure`` on a study checkpoint and on a real dataset."""

from __future__ import annotations

import json

import pytest

from shiftlab.cli.main import main
from shiftlab.study.config import StudyConfig
from shiftlab.study.runner import run_study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    run_study(StudyConfig(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1, max_epochs=1,
                          n_train=200, n_test=50, n_eval=8, n_profile=2, n_boot=50), out, workers=1)
    return out


def test_measure_a_study_checkpoint_on_its_dataset(study_dir, tmp_path, capsys):
    ckpt = study_dir / "checkpoints" / "strided_gap__centred__seed0"
    out = tmp_path / "m.json"
    code = main(["measure", str(ckpt), "--data", "digits", "-n", "20", "--shifts", "1", "--mode", "zeros", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    payload = json.loads(out.read_text())
    inv = payload["invariance"]
    results = json.loads((study_dir / "results.json").read_text())
    run = results["runs"][0]
    # same model, same (centred, unshifted) test images: the same accuracy as the study measured
    assert inv["n_images"] == 20 and inv["accuracy"] is not None
    assert payload["equivariance"]["input_shape"] == [1, *results["meta"]["canvas_size"]]
    assert "centred on a" in payload["images"]
    assert [layer["name"] for layer in payload["equivariance"]["layers"]][0] == "features.0"
    assert run["model"] == "strided_gap"


def test_checkpoint_file_path_also_works_and_weights_are_refused(study_dir, capsys):
    ckpt = study_dir / "checkpoints" / "strided_gap__centred__seed0" / "checkpoint.pt"
    assert main(["measure", str(ckpt), "--data", "digits", "-n", "4", "--shifts", "1"]) == 0
    assert main(["measure", str(ckpt), "--data", "digits", "--weights", str(ckpt)]) == 2
    assert "--weights is for file.py:factory" in capsys.readouterr().err


def test_factory_model_on_a_dataset_reports_accuracy(tmp_path, capsys):
    src = tmp_path / "m.py"
    src.write_text("import torch\nfrom torch import nn\n"
                   "def build():\n    torch.manual_seed(0)\n"
                   "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
                   "                         nn.Linear(4, 10))\n")
    out = tmp_path / "r.json"
    assert main(["measure", f"{src}:build", "--data", "digits", "-n", "10", "--shifts", "1", "--json", str(out)]) == 0
    inv = json.loads(out.read_text())["invariance"]
    assert inv["accuracy"] is not None and len(inv["accuracy_by_shift"]) == 9


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "m.py"
    src.write_text("from torch import nn\ndef build():\n    return nn.Sequential(nn.Flatten())\n")
    assert main(["measure", f"{src}:build", "--data", "idx", "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "error" in capsys.readouterr().err


def test_a_transfer_run_gets_a_clear_error(tmp_path, capsys):
    out = tmp_path / "transfer"
    run_study(StudyConfig(data="digits", models=("strided_gap",), conditions=("transfer",), seeds=1, max_epochs=1,
                          n_train=200, n_test=50, n_eval=8, n_profile=2, n_boot=50), out, workers=1)
    key = out / "checkpoints" / "strided_gap__transfer__seed0"
    assert (key / "trunk" / "checkpoint.pt").is_file() and (key / "head" / "checkpoint.pt").is_file()
    assert main(["measure", str(key), "--data", "digits"]) == 2
    assert "is a transfer run" in capsys.readouterr().err
