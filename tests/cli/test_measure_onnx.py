"""``shiftlab measure model.onnx`` (``docs/onnx.md``): the numbers of the Python API on an ONNX
export, a dense output's EQ-T, and one clear error line for every input that cannot work."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from cli_helpers import run
from torch import nn

import shiftlab as sl

pytest.importorskip("onnx", reason="the ONNX path needs onnx: pip install onnx onnxruntime")
pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime: pip install onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


def export(model: nn.Module, path: Path, size: int = 16) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(model.eval(), (torch.zeros(2, 1, size, size),), str(path), dynamo=False,
                          input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx_cli")
    torch.manual_seed(0)
    fcn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 1, 1))
    return {"classifier": export(sl.zoo.build("maxpool_fc", input_size=16, width=4, seed=0), root / "cnn.onnx"),
            "dense": export(fcn, root / "fcn.onnx")}


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shiftlab measure: error: "), err
    return lines[0]


def test_an_onnx_file_measures_as_the_python_api(capsys, tmp_path, files):
    out_json = tmp_path / "onnx.json"
    code, out, err = run(capsys, "measure", str(files["classifier"]), "--input-shape", "1,16,16", "-n", "4",
                         "--shifts", "1", "--json", str(out_json))
    assert code == 0, err
    flat = " ".join(out.split())  # rich wraps long lines
    assert "cnn.onnx: ONNX, 2,154 weights, 9 layer maps, input [?, 1, 16, 16], 4 images of (1, 16, 16)" in flat
    assert "Per-layer equivariance" in flat and "/features/features.3/MaxPool" in flat
    payload = json.loads(out_json.read_text())
    images = torch.rand((4, 1, 16, 16), generator=torch.Generator().manual_seed(0))  # the CLI's random images
    inv = sl.invariance(files["classifier"], images, shifts=1, batch_size=128)
    eq = sl.equivariance(files["classifier"], images, shifts=1, batch_size=128)
    assert payload["invariance"] == json.loads(json.dumps(inv.to_dict()))
    assert payload["equivariance"] == json.loads(json.dumps(eq.to_dict()))
    assert payload["equivariance"]["layers"][0]["name"] == "/features/features.0/Conv"
    assert payload["invariance"]["certificate"]["holds"] is False  # an ONNX graph runs every shift


def test_maps_at_once_runs_the_graph_in_pieces_with_the_same_numbers(capsys, tmp_path, files):
    tables = []
    for maps in ("1", "32"):
        path = tmp_path / f"maps{maps}.json"
        code, _, err = run(capsys, "measure", str(files["classifier"]), "--input-shape", "1,16,16", "-n", "4",
                           "--shifts", "1", "--maps-at-once", maps, "--json", str(path))
        assert code == 0, err
        tables.append(json.loads(path.read_text())["equivariance"])
    assert tables[0] == tables[1] and len(tables[0]["layers"]) == 9
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "measure", str(files["classifier"]), "--input-shape", "1,16,16", "--maps-at-once", "0")
    assert exit_info.value.code == 2 and "--maps-at-once: must be a positive integer" in capsys.readouterr().err


def test_a_dense_onnx_output_gets_its_eq_t(capsys, files):
    code, out, err = run(capsys, "measure", str(files["dense"]), "--input-shape", "1,16,16", "-n", "2", "--shifts", "1")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "dense output: EQ-T =" in flat and "Invariance (" not in flat


@pytest.mark.parametrize("case, argv, message", [
    ("weights", ["--weights", "w.pt"], "an ONNX file holds its weights; --weights is for file.py:factory models"),
    ("size", ["--input-shape", "1,20,20"], "is fixed at 16x16 ([?, 1, 16, 16]), the images it would see are 20x20"),
    ("channels", ["--input-shape", "3,16,16"], "takes 1 channel, the images have 3"),
    ("certify", ["--certify", "yes"], "certify=True, but the polyphase certificate does not hold: an ONNX model"),
])
def test_input_that_cannot_work_is_one_error_line(capsys, files, case, argv, message):
    before = files["classifier"].read_bytes()
    args = ["measure", str(files["classifier"]), "-n", "2", "--shifts", "1", *argv]
    if "--input-shape" not in argv:
        args += ["--input-shape", "1,16,16"]
    code, _, err = run(capsys, *args)
    assert code == 2 and message in error_line(err)
    assert files["classifier"].read_bytes() == before


def test_missing_and_broken_files(capsys, tmp_path):
    code, _, err = run(capsys, "measure", str(tmp_path / "none.onnx"), "--input-shape", "1,8,8")
    assert code == 2 and f"ONNX model file {tmp_path / 'none.onnx'} does not exist" in error_line(err)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    code, _, err = run(capsys, "measure", str(broken), "--input-shape", "1,8,8")
    assert code == 2 and "broken.onnx is not a valid ONNX model" in error_line(err)
