"""The torch gallery (``shiftlab.gallery``: ``load_digit_cnn``, ``load_pnet``; ``examples/gallery_digit_cnn.py``,
``examples/gallery_pnet.py``): the packages' real weights load into this package's module definitions,
which compute what the packages' own definitions compute; the digit CNN reads real MNIST digits and
P-Net finds the astronaut's face before any shift; both examples run end to end. Tests that need
an optional package skip, saying what to install, when it is missing (the packages are located
with ``importlib.util.find_spec``, never imported)."""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

import shiftlab as sl
from shiftlab.data import load
from shiftlab.gallery import DigitCNN, PNet, load_digit_cnn, load_pnet, package_file
from shiftlab.gallery.images import rgb_tensor
from shiftlab.gallery.normalize import Normalize
from shiftlab.gallery.pnet import window_centre
from shiftlab.training import evaluate
from shiftlab.weights import load_weights

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _needs(package: str, pip: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(importlib.util.find_spec(package) is None,
                              reason=f"the gallery model needs {pip}: pip install --no-deps {pip}")


needs_digits = _needs("digit_recognizer", "digit-recognizer-py")
needs_facenet = _needs("facenet_pytorch", "facenet-pytorch")
needs_skimage = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                   reason="the gallery's images come from scikit-image: pip install scikit-image")

#: The astronaut's face in skimage.data.astronaut() (512 x 512), by eye: eyebrows to chin, cheek
#: to cheek, as (top, bottom, left, right) pixel rows and columns.
FACE = (80, 176, 168, 272)
#: facenet-pytorch's MTCNN default first-stage threshold: windows below it are dropped.
PNET_THRESHOLD = 0.6


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"shiftlab_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _skimage_64(name: str) -> torch.Tensor:
    from skimage import data

    return F.interpolate(rgb_tensor(getattr(data, name)()), size=(64, 64), mode="area")


def _frozen(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- the module definitions, without the packages ---------------------------------------------

def test_digit_cnn_architecture():
    model = DigitCNN()
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert [type(m).__name__ for m in model.conv_layers] == ["Conv2d", "ReLU", "MaxPool2d"] * 3
    layers = [("conv_layers", (0, 3, 6)), ("fc_layers", (0, 2))]
    assert model.state_dict().keys() == {f"{p}.{i}.{w}" for p, idx in layers for i in idx for w in ("weight", "bias")}


@pytest.mark.parametrize("hw", [(12, 12), (13, 20), (64, 48)])
def test_pnet_map_size(hw):
    h, w = hw
    out = PNet()(torch.rand(2, 3, h, w))
    assert out.shape == (2, 1, -(-(h - 2) // 2) - 4, -(-(w - 2) // 2) - 4)  # ceil-mode pool
    assert ((out >= 0) & (out <= 1)).all()
    assert PNet().box_regression(torch.rand(1, 3, h, w)).shape[1:] == (4, *out.shape[2:])
    assert window_centre(1, 2) == (7.5, 9.5)


def test_normalize():
    norm = Normalize([0.5, 0.25, 0.0], [2.0, 0.5, 1.0]).double()
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    expected = (x - torch.tensor([0.5, 0.25, 0.0], dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        [2.0, 0.5, 1.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.equal(norm(x), expected) and norm.mean.dtype == torch.float64
    assert norm.state_dict() == {}  # the packages' weight files load as they are
    sl.check_equivariant(norm, (3, 8, 8))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize([0.5], [0.0])
    with pytest.raises(ValueError, match="one value per channel"):
        Normalize([0.5, 0.5], [1.0])


def test_rgb_tensor():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    x = rgb_tensor(grey)
    assert x.shape == (1, 3, 3, 4) and x.dtype == torch.float32
    assert torch.equal(x[0, 0], torch.from_numpy(grey).float() / 255) and torch.equal(x[0, 0], x[0, 2])
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 1], rgba[..., 3] = 255, 7
    assert rgb_tensor(rgba)[0, :, 0, 0].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(TypeError, match="uint8"):
        rgb_tensor(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        rgb_tensor(np.zeros((2, 2, 2), dtype=np.uint8))


# --- loading weights: every mismatch named, the model untouched --------------------------------

class NotATensor:  # weights_only=True refuses to unpickle it: no code from the file runs
    pass


def test_load_weights_errors(tmp_path):
    good = DigitCNN().state_dict()
    renamed = {("conv_layers.0.kernel" if k == "conv_layers.0.weight" else k): v for k, v in good.items()}
    reshaped = {**good, "fc_layers.0.weight": torch.zeros(256, 2048)}
    cases = {
        "renamed.pt": (renamed, r"missing conv_layers\.0\.weight \(32, 1, 3, 3\); unexpected conv_layers\.0\.kernel"),
        "reshaped.pt": (reshaped, r"fc_layers\.0\.weight: file \(256, 2048\), model \(256, 1152\)"),
        "list.pt": ([1, 2], "holds a list, not a state dict"),
        "object.pt": ({"conv_layers.0.weight": NotATensor()}, "cannot read weights from"),
    }
    model = DigitCNN()
    before = _frozen(model)
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(ValueError, match=message):
            load_weights(model, tmp_path / name)
        with pytest.raises(ValueError, match=message):
            load_digit_cnn(tmp_path / name)
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read weights from"):
        load_weights(model, tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError, match="weights file .* does not exist"):
        load_pnet(tmp_path / "absent.pt")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # a failed load does not switch modes either


def test_load_weights_round_trip(tmp_path):
    source = PNet()
    torch.save(source.state_dict(), tmp_path / "pnet.pt")
    loaded = load_pnet(tmp_path / "pnet.pt")
    assert not loaded.training and all(torch.equal(a, b) for a, b in zip(source.parameters(), loaded.parameters(), strict=True))


def test_missing_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    absent = ("digit_recognizer", "facenet_pytorch")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in absent else real(name, *args))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps digit-recognizer-py"):
        load_digit_cnn()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps facenet-pytorch"):
        load_pnet()


# --- the real weights ---------------------------------------------------------------------------

@needs_digits
def test_digit_cnn_weights_and_clean_accuracy():
    path = package_file("digit_recognizer", "models/handwriting_model.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = load_digit_cnn()
    assert not any(m.training for m in model.modules())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in state.items()}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    test = load("mnist-5k", split="test")  # 1,000 real digits (from MNIST's training set: see docs/gallery.md)
    accuracy = evaluate(model, test.images, test.labels)
    assert accuracy >= 0.99  # measured 0.996 (4 errors in 1,000)


@needs_digits
def test_digit_cnn_computes_what_the_package_computes():
    # the package's model.py imports torch.nn only; run that file alone, not the package (torchvision)
    spec = importlib.util.spec_from_file_location("digit_recognizer_model_file",
                                                  package_file("digit_recognizer", "model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theirs = module.CNN()
    theirs.load_state_dict(torch.load(package_file("digit_recognizer", "models/handwriting_model.pth"),
                                      weights_only=True))
    x = load("mnist-5k", split="test").images[:64]
    with torch.inference_mode():
        torch.testing.assert_close(load_digit_cnn()(x), theirs.eval()((x - 0.1307) / 0.3081))


@needs_facenet
def test_pnet_weights_and_the_packages_definition():
    path = package_file("facenet_pytorch", "data/pnet.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = load_pnet()
    assert not any(m.training for m in model.modules())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in state.items()}
    # facenet-pytorch's own PNet class, taken from its source (mtcnn.py imports torchvision through
    # its relative imports, so the class alone is compiled), fed as MTCNN feeds it
    tree = ast.parse(package_file("facenet_pytorch", "models/mtcnn.py").read_text())
    pnet_class = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "PNet")
    namespace = {"torch": torch, "nn": torch.nn, "os": os}
    exec(compile(ast.Module([pnet_class], []), "facenet_pytorch/models/mtcnn.py", "exec"), namespace)  # noqa: S102
    theirs = namespace["PNet"](pretrained=False)
    theirs.load_state_dict(state)
    x = torch.rand(2, 3, 30, 26)
    with torch.inference_mode():
        box, prob = theirs.eval()((x * 255 - 127.5) * 0.0078125)
        torch.testing.assert_close(model(x), prob[:, 1:])
        torch.testing.assert_close(model.box_regression(x), box)


@needs_facenet
@needs_skimage
def test_pnet_finds_the_astronauts_face():
    model = load_pnet()
    with torch.inference_mode():
        face = model(_skimage_64("astronaut"))[0, 0]  # 27 x 27 windows; the face is ~14 px tall here
        brick = model(_skimage_64("brick"))[0, 0]
    i, j = divmod(int(face.argmax()), face.shape[1])
    row, col = (8 * c for c in window_centre(i, j))  # back to 512 x 512 pixels
    top, bottom, left, right = FACE
    assert top <= row <= bottom and left <= col <= right, (row, col)
    assert float(face.max()) > 0.99  # measured 1.0000 at (124, 220)
    assert float(brick.max()) < PNET_THRESHOLD  # measured 0.086: no window of the wall passes MTCNN's first stage


# --- the examples, end to end -------------------------------------------------------------------

@needs_digits
def test_digit_cnn_example_runs():
    example = _example("gallery_digit_cnn")
    result = example.run(example.SMOKE)  # the README's numbers come from example.FULL (minutes)
    assert [r.name for r in result.rows] == ["pretrained", "fine-tuned", "blur", "aps"]
    assert result.row("pretrained").invariance.accuracy >= 0.95  # 48 real digits
    assert all(len(r.invariance.accuracy_by_shift) == 25 and r.invariance.degenerate is None for r in result.rows)
    assert [(e.path, e.new_kind) for e in result.conversions["blur"].entries] == [
        (f"conv_layers.{i}", "MaxBlurPool2d") for i in (2, 5, 8)]
    aps = result.conversions["aps"]
    assert [e.path for e in aps.entries] == ["conv_layers.2", "conv_layers.5"]
    assert [(u.path, u.skipped, u.in_size) for u in aps.unconverted] == [("conv_layers.8", True, (7, 7))]
    # the first layer to change a zero-filled shift is the normalisation (the fill is 0 before it and
    # -mean/std after); inside the image, the first max-pool is where equivariance breaks
    assert result.profile.first_break(example.TOL).name == "normalize"
    assert result.profile.first_break(example.TOL, interior=True).name == "conv_layers.2"
    out = io.StringIO()
    example.print_result(result, Console(file=out, width=140))
    assert "Accuracy (%) by shift distance" in out.getvalue() and "first break: normalize" in out.getvalue()


@needs_facenet
@needs_skimage
def test_pnet_example_runs():
    example = _example("gallery_pnet")
    result = example.run()
    astronaut, brick = result.peaks
    assert astronaut.probability > 0.99 and brick.probability < PNET_THRESHOLD
    origins = dict(zip((layer.name for layer in result.profile.layers), result.profile.origins(example.TOL), strict=True))
    assert result.profile.first_break(example.TOL).name == "conv1"  # unpadded: the wrap seam, at the border
    assert origins["conv1"] == "breaks here: boundary"
    assert result.profile.first_break(example.TOL, interior=True).name == "pool1"
    assert origins["pool1"] == "breaks here: aliasing"
    # shifts by multiples of the stride 2 move the map by whole pixels: equal up to float rounding
    assert result.eq_t_even_db > 120 and result.eq_t_odd_db < 40
    out = io.StringIO()
    example.print_result(result, Console(file=out, width=140))
    assert "EQ-T of the face-probability map" in out.getvalue()
