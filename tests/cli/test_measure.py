"""Tests of ``shiftlab measure``: in-process through ``main()`` and once through the console script."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import CIRC, CNN, ZERO, run

from shiftlab.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def measure_json(capsys, tmp_path: Path, target: str, *extra: str) -> dict:
    path = tmp_path / "out" / "result.json"  # parent directory created on the fly
    code, out, err = run(capsys, "measure", target, "-n", "8", "--shifts", "1", "--json", str(path), *extra)
    assert code == 0, err
    assert f"wrote {path}" in out.replace("\n", "")
    return json.loads(path.read_text())


def layer(payload: dict, name: str) -> dict:
    return next(layer for layer in payload["equivariance"]["layers"] if layer["name"] == name)


def test_circular_and_zero_padded_examples(capsys, tmp_path):
    circ = measure_json(capsys, tmp_path, CIRC, "--input-shape", "1,28,28")
    assert circ["model"] == CIRC and circ["images"] == "random uniform, seed 0"
    inv = circ["invariance"]
    assert inv["n_images"] == 8 and len(inv["shifts"]) == 9 and inv["n_classes"] == 10
    # The FC head makes this model not shift invariant in general (claim C6); with random weights
    # and random images its logits are dominated by the bias, so no prediction changes here.
    assert inv["consistency"] == 1.0
    assert layer(circ, "0")["diagnosis"] == "equivariant" and layer(circ, "0")["aligned_error"] == 0.0
    assert layer(circ, "2")["diagnosis"] == "aliasing" and layer(circ, "2")["stride"] == [2, 2]
    assert [s["name"] for s in circ["equivariance"]["skipped"]] == ["6", "7"]

    zero = measure_json(capsys, tmp_path, ZERO, "--input-shape", "1,28,28")
    assert layer(zero, "0")["diagnosis"] == "boundary"
    assert layer(zero, "0")["aligned_error"] > 1e-3 and layer(zero, "0")["aligned_interior_error"] < 1e-6


def test_tables_and_first_break_printed(capsys):
    code, out, _ = run(capsys, "measure", ZERO, "--input-shape", "1,28,28", "-n", "2", "--shifts", "1")
    assert code == 0
    assert "Per-layer equivariance" in out and "Invariance (circular shifts" in out
    assert "First layer to break equivariance" in out and "boundary" in out
    assert "Skipped (output is not a 4-D map)" in out


def test_gap_model_consistency_is_exactly_one(capsys, tmp_path):
    model_file = tmp_path / "gapnet.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n"
        "    torch.manual_seed(1)\n"
        "    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, padding_mode='circular'), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))\n"
    )
    payload = measure_json(capsys, tmp_path, f"{model_file}:build", "--input-shape", "1,12,12", "--shifts", "3")
    assert payload["invariance"]["consistency"] == 1.0 and payload["invariance"]["flip_rate"] == 0.0
    assert payload["equivariance"]["layers"][-1]["kind"] == "AdaptiveAvgPool2d"


def test_dense_output_reports_eq_t(capsys, tmp_path):
    model_file = tmp_path / "fcn.py"
    model_file.write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 1, 3, padding=1))\n"
    )
    payload = measure_json(capsys, tmp_path, f"{model_file}:build", "--input-shape", "1,10,10")
    assert payload["invariance"] is None
    assert isinstance(payload["equivariance"]["output_eq_t_db"], float)


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_images_from_files(capsys, tmp_path, suffix):
    gen = torch.Generator().manual_seed(0)
    if suffix == ".npy":
        data = torch.rand(10, 1, 28, 28, generator=gen)
        path = tmp_path / "imgs.npy"
        np.save(path, data.numpy())
    else:  # uint8 [N, H, W]: a channel is added and values scaled to [0, 1]
        data = (torch.rand(10, 28, 28, generator=gen) * 255).to(torch.uint8)
        path = tmp_path / "imgs.pt"
        torch.save(data, path)
    payload = measure_json(capsys, tmp_path, ZERO, "--images", str(path))
    assert payload["images"] == str(path)
    assert payload["invariance"]["n_images"] == 8  # the first -n 8 of 10
    assert payload["equivariance"]["input_shape"] == [1, 28, 28]


def test_images_file_errors(capsys, tmp_path):
    code, _, err = run(capsys, "measure", ZERO, "--images", str(tmp_path / "missing.npy"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "imgs.csv"
    bad.write_text("1,2,3\n")
    code, _, err = run(capsys, "measure", ZERO, "--images", str(bad))
    assert code == 2 and "must be a .npy or .pt file" in err
    code, _, err = run(capsys, "measure", ZERO)
    assert code == 2 and "give --input-shape C,H,W" in err
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,28")
    assert code == 2 and "--input-shape must be C,H,W" in err


def test_weights_are_loaded(capsys, tmp_path):
    model = runpy.run_path(str(CNN))["maxpool_cnn"]()
    with torch.no_grad():  # a constant first layer: exactly equivariant despite zero padding
        model[0].weight.zero_()
        model[0].bias.fill_(1.0)
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    payload = measure_json(capsys, tmp_path, ZERO, "--input-shape", "1,28,28", "--weights", str(weights))
    assert payload["weights"] == str(weights)
    assert layer(payload, "0")["diagnosis"] == "equivariant"  # without the weights: "boundary"


def test_bad_weights_exit_2_with_clear_message(capsys, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a torch file")
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,28,28", "--weights", str(corrupt))
    assert code == 2
    assert err.startswith("shiftlab measure: error: cannot read weights from") and "state_dict" in err
    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), other)
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,28,28", "--weights", str(other))
    assert code == 2 and "do not fit the model" in err
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,28,28", "--weights", str(tmp_path / "nope.pt"))
    assert code == 2 and "weights file" in err and "does not exist" in err


def test_bad_targets_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "measure", str(tmp_path / "missing.py") + ":build", "--input-shape", "1,8,8")
    assert code == 2 and "model file" in err and "does not exist" in err
    code, _, err = run(capsys, "measure", f"{CNN}:nope", "--input-shape", "1,8,8")
    assert code == 2 and "has no callable 'nope'" in err and "maxpool_cnn" in err
    code, _, err = run(capsys, "measure", str(CNN), "--input-shape", "1,8,8")
    assert code == 2 and "expected MODEL as path/to/file.py:factory" in err
    not_module = tmp_path / "notmodule.py"
    not_module.write_text("def build():\n    return 42\n")
    code, _, err = run(capsys, "measure", f"{not_module}:build", "--input-shape", "1,8,8")
    assert code == 2 and "returned int, not a torch.nn.Module" in err


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "measure" in out


# --- the installed console script -----------------------------------------------------------------

_VENV_SCRIPT = Path(sys.executable).with_name("shiftlab")
SCRIPT = shutil.which("shiftlab") or (str(_VENV_SCRIPT) if _VENV_SCRIPT.exists() else None)


def script_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "160"}


@pytest.mark.skipif(SCRIPT is None, reason="the shiftlab console script is not installed")
def test_console_script_help():
    proc = subprocess.run([SCRIPT, "measure", "--help"], capture_output=True, text=True, timeout=120, env=script_env())
    assert proc.returncode == 0, proc.stderr
    assert "usage: shiftlab measure" in proc.stdout and "--shifts" in proc.stdout and "--weights" in proc.stdout


@pytest.mark.skipif(SCRIPT is None, reason="the shiftlab console script is not installed")
def test_console_script_prints_the_tables(tmp_path):
    proc = subprocess.run(
        [SCRIPT, "measure", CIRC, "--input-shape", "1,28,28", "-n", "2", "--shifts", "1"],
        capture_output=True, text=True, timeout=180, env=script_env(), cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Per-layer equivariance" in proc.stdout
    assert "First layer to break equivariance" in proc.stdout and "MaxPool2d" in proc.stdout


def test_input_that_does_not_fit_the_model_exits_2(capsys):
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,16,16", "-n", "2", "--shifts", "1")
    assert code == 2
    assert "the model failed" in err and "--input-shape" in err


def test_device_batch_size_auto_and_certify_options(capsys, tmp_path):
    model_file = tmp_path / "strided.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n"
        "    torch.manual_seed(1)\n"
        "    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1, padding_mode='circular'), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))\n"
    )
    target = f"{model_file}:build"
    payload = measure_json(capsys, tmp_path, target, "--input-shape", "1,12,12", "--shifts", "3",
                           "--batch-size", "auto", "--device", "cpu", "--certify", "yes")
    inv = payload["invariance"]
    assert inv["method"] == "certified" and inv["certificate"]["stride"] == [2, 2] and inv["device"] == "cpu"
    assert inv["batch_size"] >= 1 and payload["equivariance"]["batch_size"] >= 1
    exact = measure_json(capsys, tmp_path, target, "--input-shape", "1,12,12", "--shifts", "3", "--certify", "no")
    assert exact["invariance"]["method"] == "exact"
    assert exact["invariance"]["consistency"] == inv["consistency"]
    # a zero-filled measurement cannot be certified: --certify yes says why and exits 2
    code, _, err = run(capsys, "measure", target, "--input-shape", "1,12,12", "-n", "4", "--mode", "zeros",
                       "--certify", "yes")
    assert code == 2 and "certificate does not hold" in err and "needs circular shifts" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it before anything runs
        main(["measure", target, "--input-shape", "1,12,12", "--batch-size", "0"])
    assert exit_info.value.code == 2 and "positive integer or 'auto'" in capsys.readouterr().err
    code, _, err = run(capsys, "measure", target, "--input-shape", "1,12,12", "--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in err
