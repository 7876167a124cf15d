"""Every CLI error is one ``shiftlab COMMAND: error: ...`` line, exit code 2, that names the file or
value and the fix; ``--debug`` shows the traceback instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import CNN, ZERO, run

import shiftlab.cli.study as study_cli
from shiftlab.cli.main import error_message
from shiftlab.cli.measure import explain_model_error

pytestmark = pytest.mark.usefixtures("one_thread")


def one_error_line(err: str, command: str = "measure") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"shiftlab {command}: error: "), err
    return lines[0]


@pytest.fixture
def raising_factory(tmp_path: Path) -> Path:
    src = tmp_path / "broken.py"
    src.write_text("def build():\n    config = {}\n    return config['width']\n")
    return src


def test_a_factory_that_raises_is_named_with_its_exception(capsys, raising_factory):
    code, _, err = run(capsys, "measure", f"{raising_factory}:build", "--input-shape", "1,8,8")
    line = one_error_line(err)
    assert code == 2
    assert f"the factory {raising_factory}:build raised KeyError: 'width'" in line
    assert "line 3 of broken.py" in line
    assert "check that the images" not in line and "Traceback" not in err


def test_a_model_file_that_fails_to_import_is_named(capsys, tmp_path):
    src = tmp_path / "needs.py"
    src.write_text("import a_module_that_is_not_installed\ndef build():\n    pass\n")
    code, _, err = run(capsys, "measure", f"{src}:build", "--input-shape", "1,8,8")
    line = one_error_line(err)
    assert code == 2 and f"importing the model file {src} raised ModuleNotFoundError" in line


def test_debug_shows_the_traceback_instead(capsys, raising_factory):
    for argv in (["--debug", "measure", f"{raising_factory}:build", "--input-shape", "1,8,8"],
                 ["measure", f"{raising_factory}:build", "--input-shape", "1,8,8", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert "Traceback (most recent call last)" in err
        assert "KeyError: 'width'" in err and "UserCodeError" in err  # the user's error and what it became
        assert "shiftlab measure: error:" not in err


def test_a_missing_checkpoint_directory_says_it_does_not_exist(capsys, tmp_path):
    target = "runs/study/checkpoints/strided_gap__centred__seed0"
    code, _, err = run(capsys, "measure", str(tmp_path / target), "--data", "digits")
    line = one_error_line(err)
    assert code == 2 and f"MODEL {tmp_path / target} does not exist" in line
    assert "RUN_DIR/checkpoints/MODEL__CONDITION__seedN" in line
    # a run directory that exists, with a wrong key: the keys it holds are listed
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "maxpool_fc__centred__seed0").mkdir(parents=True)
    code, _, err = run(capsys, "measure", str(checkpoints / "strided_gap__centred__seed0"), "--data", "digits")
    line = one_error_line(err)
    assert code == 2 and "does not exist" in line and "holds: maxpool_fc__centred__seed0" in line


def test_a_py_file_without_factory_name_says_how_to_name_it(capsys):
    code, _, err = run(capsys, "measure", str(CNN), "--input-shape", "1,8,8")
    line = one_error_line(err)
    assert code == 2 and "expected MODEL as path/to/file.py:factory" in line and f"{CNN}:NAME" in line


def test_channels_last_images_are_recognised(capsys, tmp_path):
    path = tmp_path / "hwc.npy"
    np.save(path, np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32))
    code, _, err = run(capsys, "measure", ZERO, "--images", str(path))
    line = one_error_line(err)
    assert code == 2
    assert "(16, 28, 28, 1)" in line and "channels-last (N, H, W, C)" in line and "(N, C, H, W)" in line
    assert "transpose(0, 3, 1, 2)" in line
    assert "too large" not in line


def test_an_input_shape_given_as_hwc_is_recognised(capsys):
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "28,28,1")
    line = one_error_line(err)
    assert code == 2 and "looks like H,W,C" in line and "--input-shape 1,28,28" in line


def test_a_channel_mismatch_names_both_counts_not_the_batch(capsys, tmp_path):
    path = tmp_path / "rgb.npy"
    np.save(path, np.random.default_rng(0).random((5, 3, 28, 28), dtype=np.float32))
    code, _, err = run(capsys, "measure", ZERO, "--images", str(path), "--shifts", "1")
    line = err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("shiftlab measure: error: ")
    assert "the model expects 1 channel, the images have 3" in line
    assert "input[" not in line and "80" not in line


def test_explain_model_error_hides_the_internal_batch_size():
    conv = RuntimeError("Given groups=1, weight of size [16, 3, 3, 3], expected input[80, 1, 28, 28] to have 3 "
                        "channels, but got 1 channels instead")
    assert explain_model_error(conv).startswith("the model expects 3 channels, the images have 1")
    matmul = RuntimeError("mat1 and mat2 shapes cannot be multiplied (128x512 and 1568x10)")
    text = explain_model_error(matmul)
    assert "expects 1568 features and got 512" in text and "--input-shape" in text and "128" not in text
    other = explain_model_error(RuntimeError("Expected input[128, 2, 5] to be 4-D\nsecond line"))
    assert "input[N, 2, 5]" in other and "128" not in other and "\n" not in other


def test_unexpected_errors_are_one_line_naming_their_type(capsys, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise KeyError("fraction")

    monkeypatch.setattr(study_cli, "run_study", broken)
    code, _, err = run(capsys, "study", "--out", str(tmp_path / "run"))
    line = one_error_line(err, "study")
    assert code == 2 and "KeyError: 'fraction'" in line and "--debug" in line
    assert error_message(ValueError("two\nlines"), "study") == "two lines"
    # a RuntimeError outside `measure` is not blamed on the images
    assert "images" not in error_message(RuntimeError("boom"), "study")


def test_measure_weights_and_images_errors_are_single_lines(capsys, tmp_path):
    code, _, err = run(capsys, "measure", ZERO, "--input-shape", "1,28,28", "--weights", str(tmp_path / "w.pt"))
    assert code == 2 and "weights file" in one_error_line(err)
    flat = tmp_path / "flat.pt"
    torch.save(torch.zeros(784), flat)
    code, _, err = run(capsys, "measure", ZERO, "--images", str(flat))
    line = one_error_line(err)
    assert code == 2 and "shape (784,)" in line and "[N, C, H, W] or [N, H, W]" in line
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a tensor file")
    code, _, err = run(capsys, "measure", ZERO, "--images", str(damaged))
    line = one_error_line(err)
    assert code == 2 and f"cannot read images from {damaged}" in line and "torch.save" in line
