"""ONNX models (``docs/onnx.md``): an ONNX export of a zoo model measures as the torch model does
(invariance and the per-layer profile, to float32 tolerance), through onnxruntime, and every bad
input gets a clear error that leaves the user's file and session as they were."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure.onnx_graph import segments
from shiftlab.measure.onnx_runner import OnnxRunner
from shiftlab.measure.shifts import shift_many

onnx = pytest.importorskip("onnx", reason="the ONNX path needs onnx: pip install onnx onnxruntime")
ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime: pip install onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 24
#: float32 agreement of torch and onnxruntime: relative, on the per-layer errors and probabilities.
REL = 1e-4


def export(model: nn.Module, path: Path, *, batch: int | None = None, size: int = SIZE, channels: int = 1) -> Path:
    """``model`` as an ONNX file, with a dynamic batch (``batch=None``) or a fixed one."""
    x = torch.zeros(batch or 2, channels, size, size)
    axes = None if batch else {"input": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input"], output_names=["output"],
                          dynamic_axes=axes)
    return path


def varied(name: str, **kwargs) -> nn.Module:
    """A zoo model at random init whose BN statistics spread its predictions over several classes
    (at plain random init nearly every image gets one class, and invariance would be trivial)."""
    model = sl.zoo.build(name, input_size=SIZE, width=8, seed=0, **kwargs).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.01, 0.05, generator=g)
    return model


MODELS = {  # the FCN of the question (circular padding: exported as slices and concatenations) and the classic CNN
    "strided_gap": lambda: varied("strided_gap", padding_mode="circular"),
    "maxpool_fc": lambda: varied("maxpool_fc"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[nn.Module, Path]]:
    root = tmp_path_factory.mktemp("onnx")
    return {name: (make(), export(make(), root / f"{name}.onnx")) for name, make in MODELS.items()}


def images(n: int = 12, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- ONNX against torch ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_invariance_of_the_export_equals_the_torch_models(exported, name):
    model, path = exported[name]
    x, labels = images(), torch.arange(12) % 10
    before = digest(path)
    t = sl.invariance(model, x, labels, shifts=2, keep_predictions=True)
    o = sl.invariance(str(path), x, labels, shifts=2, keep_predictions=True)
    assert digest(path) == before
    assert t.consistency < 0.95 and len(set(t.predictions.flatten().tolist())) > 1  # predictions do move
    differ = (t.predictions != o.predictions).nonzero().tolist()
    for i, s in differ:  # a class may differ only where the torch logits tie to float32 rounding
        dy, dx = t.shifts[s]
        logits = model(shift_many(x[i:i + 1], torch.tensor([[dy, dx]], dtype=torch.float64), "circular")[0])
        top2 = logits.topk(2).values[0]
        assert float(top2[0] - top2[1]) < REL * float(top2.abs().max()), (i, s)
    if not differ:
        for field in ("consistency", "clean_consistency", "flip_rate", "accuracy", "mean_accuracy",
                      "worst_case_accuracy", "accuracy_by_shift", "clean_consistency_by_shift", "class_counts",
                      "majority_class", "n_classes", "n_images", "shifts"):
            assert getattr(o, field) == getattr(t, field), field
    assert o.top1_prob_change == pytest.approx(t.top1_prob_change, rel=REL, abs=1e-7)
    assert o.mean_top1_prob == pytest.approx(t.mean_top1_prob, rel=REL)
    assert o.method == "exact" and o.device == "cpu" and o.degenerate == t.degenerate


def module_path(onnx_name: str) -> str:
    """The torch module an exported node comes from: ``/features/features.3/MaxPool`` -> ``features.3``."""
    return re.fullmatch(r"/\w+/([\w.]+)/\w+", onnx_name).group(1)


def matching_torch_layer(onnx_name: str, kind: str, torch_layers: dict) -> str:
    """The torch layer whose map an exported node makes: its module's, except that the exporter
    folds eval-mode BatchNorm into the convolution before it, so a ``Conv`` node makes the
    BatchNorm module's map."""
    path = module_path(onnx_name)
    names = list(torch_layers)
    after = names[names.index(path) + 1] if names.index(path) + 1 < len(names) else None
    return after if kind == "Conv" and after and torch_layers[after].kind == "BatchNorm2d" else path


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("mode", ["circular", "zeros"])
def test_per_layer_profile_of_the_export_equals_the_torch_models(exported, name, mode):
    model, path = exported[name]
    x = images(6)
    t = sl.equivariance(model, x, shifts=2, mode=mode)
    o = sl.equivariance(path, x, shifts=2, mode=mode)
    torch_layers = {layer.name: layer for layer in t.layers}
    # a layer for every module but the folded BatchNorms; circular padding (slices, concatenations) makes none
    assert len(o.layers) == len([layer for layer in t.layers if layer.kind != "BatchNorm2d"])
    assert not any(layer.kind in ("Slice", "Concat", "Pad") for layer in o.layers)
    for layer in o.layers:
        ref = torch_layers[matching_torch_layer(layer.name, layer.kind, torch_layers)]
        assert (layer.shape, layer.stride, layer.border) == (ref.shape, ref.stride, ref.border), layer.name
        assert layer.input_stride == torch_layers[module_path(layer.name)].input_stride, layer.name
        for field in ("aligned_error", "unaligned_error", "aligned_interior_error", "unaligned_interior_error",
                      "aligned_error_max", "unaligned_error_max"):
            mine, theirs = getattr(layer, field), getattr(ref, field)
            assert (mine is None) == (theirs is None), (layer.name, field)
            if mine is not None:
                assert mine == pytest.approx(theirs, rel=REL, abs=1e-6), (layer.name, field)
        assert layer.diagnose(1e-4) == ref.diagnose(1e-4)
        assert not layer.resized_outside_modules
    assert module_path(o.first_break(1e-4).name) == t.first_break(1e-4).name
    assert [s.kind for s in o.skipped] == (["Flatten", "Gemm"] if name == "maxpool_fc" else ["Flatten"])
    assert o.output_eq_t_db is None and t.output_eq_t_db is None


def test_dense_output_eq_t_and_the_error_of_invariance(tmp_path):
    torch.manual_seed(0)
    fcn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 1, 1)).eval()
    path = export(fcn, tmp_path / "fcn.onnx")
    x = images(4)
    t, o = sl.equivariance(fcn, x, shifts=2), sl.equivariance(path, x, shifts=2)
    assert o.output_eq_t_db == pytest.approx(t.output_eq_t_db, rel=1e-5)
    assert o.layers[-1].kind == "Conv" and o.layers[-1].shape == (1, 12, 12)
    with pytest.raises(ValueError, match=r"output is one tensor \[N, classes\]; got a tensor of shape \(N, 1, 12, 12\)"
                                         r".*use shiftlab.equivariance"):
        sl.invariance(path, x, shifts=1)


def test_a_softmax_output_is_measured_on_its_logits(tmp_path):
    model = varied("maxpool_fc")
    path = export(nn.Sequential(model, nn.Softmax(dim=1)).eval(), tmp_path / "probs.onnx")
    x = images(6)
    t, o = sl.invariance(model, x, shifts=1), sl.invariance(path, x, shifts=1)
    # the engine applies softmax itself: on the graph's probabilities it would flatten them
    assert o.mean_top1_prob == pytest.approx(t.mean_top1_prob, rel=REL)
    assert o.top1_prob_change == pytest.approx(t.top1_prob_change, rel=REL, abs=1e-7)
    assert OnnxRunner(path).graph.result != OnnxRunner(path).graph.outputs


def test_an_inference_session_is_measured_as_its_file_and_left_as_it_was(exported):
    model, path = exported["maxpool_fc"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images(4)
    before = session.run(None, {"input": x.numpy()})[0]
    a = sl.invariance(session, x, shifts=1)
    b = sl.invariance(path, x, shifts=1)
    e = sl.equivariance(session, x, shifts=1, layers=["/features/features.3/MaxPool"])
    assert a.to_dict() == b.to_dict()
    assert [layer.name for layer in e.layers] == ["/features/features.3/MaxPool"] and e.skipped == []
    assert [o.name for o in session.get_outputs()] == ["output"]
    assert (session.run(None, {"input": x.numpy()})[0] == before).all()


def test_layer_selection_and_unknown_names(exported):
    _, path = exported["maxpool_fc"]
    res = sl.equivariance(path, images(2), shifts=1, layers=["/features/features.7/MaxPool", "/head/head.1/Gemm"])
    assert [layer.name for layer in res.layers] == ["/features/features.7/MaxPool"]
    assert [(s.name, s.output) for s in res.skipped] == [("/head/head.1/Gemm", "shape (N, 10)")]
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['features.3'\]; the model has: \['/features"):
        sl.equivariance(path, images(2), shifts=1, layers=["features.3"])


# --- bounded memory: the graph run in pieces of at most maps_at_once layer maps ------------------------


class Residual(nn.Module):
    """Skip connections: maps of one piece that a later piece reads (carried across the cuts)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.down = nn.Conv2d(4, 4, 3, stride=2, padding=1, padding_mode="circular")
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.stem(x)
        b = self.body(a) + a
        c = self.down(b)
        return self.head(torch.cat([c, nn.functional.max_pool2d(b, 2)], dim=1)).sigmoid()


@pytest.fixture(scope="module")
def residual(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export(Residual().eval(), tmp_path_factory.mktemp("onnx") / "residual.onnx")


def watched_pass(runner: OnnxRunner, x: torch.Tensor) -> tuple[list[tuple[str, torch.Tensor, object]], object]:
    """Every layer map of one pass of ``x`` as the per-layer profile's hook gets it, and the result."""
    seen: list[tuple[str, torch.Tensor, object]] = []
    with runner.session() as handle:
        handle.watch(lambda layer, value, source_hw: seen.append((layer.name, value.clone(), source_hw)))
        result = runner(x)
    return seen, result


@pytest.mark.parametrize("maps_at_once", [1, 2, 5])
def test_maps_fetched_in_pieces_equal_the_maps_of_one_run(exported, residual, tmp_path, maps_at_once):
    """Exactly: the pieces compute every map as the whole graph does (same ops, same order)."""
    one_image = export(varied("maxpool_fc"), tmp_path / "one.onnx", batch=1)
    for path in (exported["strided_gap"][1], exported["maxpool_fc"][1], residual, one_image):
        x = images(3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the fixed batch of one
            whole, pieces = OnnxRunner(path, maps_at_once=10_000), OnnxRunner(path, maps_at_once=maps_at_once)
        (maps, result), (maps_k, result_k) = watched_pass(whole, x), watched_pass(pieces, x)
        assert len(pieces._pieces) > 1 and len(whole._pieces) == 1
        assert [(name, hw) for name, _, hw in maps_k] == [(name, hw) for name, _, hw in maps]
        assert all(torch.equal(a, b) for (_, a, _), (_, b, _) in zip(maps_k, maps, strict=True)), path.name
        assert torch.equal(result_k, result)


def test_pieces_cover_the_graph_once_and_fetch_at_most_maps_at_once(exported, residual):
    for path in (exported["strided_gap"][1], residual):
        graph = OnnxRunner(path).graph
        nodes = graph.model.graph.node
        fetched = {layer.tensor for layer in graph.layers} | set(graph.sources())
        for k in (1, 3, 10_000):
            pieces = segments(graph, k)
            assert [i for piece in pieces for i in piece.nodes] == list(range(len(nodes)))
            assert [layer for piece in pieces for layer in piece.layers] == list(graph.layers)
            known = {graph.input.name}
            for piece in pieces:
                assert len(fetched & set(piece.outputs)) <= k
                assert set(piece.inputs) <= known  # made by an earlier piece, and kept until now
                known = (known | set(piece.outputs)) & piece.keep
            assert set(graph.result) <= known
        assert any(len(piece.inputs) > 1 for piece in segments(graph, 1)) == (path == residual)  # skips cross cuts


def test_the_profile_does_not_depend_on_maps_at_once(residual):
    x = images(4)
    whole = sl.equivariance(residual, x, shifts=2, mode="zeros", batch_size=24, maps_at_once=10_000).to_dict()
    for k in (1, 4):
        assert sl.equivariance(residual, x, shifts=2, mode="zeros", batch_size=24, maps_at_once=k).to_dict() == whole
    with pytest.raises(ValueError, match="maps_at_once must be an int >= 1, got 0"):
        sl.equivariance(residual, x, shifts=1, maps_at_once=0)


def test_the_text_detectors_maps_in_pieces_equal_one_run():
    """PP-OCRv4's detector (329 maps, squeeze-excitation and an FPN): onnxruntime's layout
    optimizations would compute some convolutions differently in a piece than in the whole graph;
    the pieces run without them, so every map is equal."""
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        pytest.skip("the text detector needs pip install --no-deps rapidocr-onnxruntime")
    from shiftlab.gallery.onnx_models import text_detector

    path = text_detector().path
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps, result = watched_pass(OnnxRunner(path, maps_at_once=10_000), x)
    maps_k, result_k = watched_pass(OnnxRunner(path, maps_at_once=16), x)
    assert len(maps) == 329 and [name for name, _, _ in maps_k] == [name for name, _, _ in maps]
    assert all(torch.equal(a, b) for (_, a, _), (_, b, _) in zip(maps_k, maps, strict=True))
    assert torch.equal(result_k, result)


def test_the_certificate_needs_a_torch_module(exported):
    _, path = exported["strided_gap"]
    x = images(4)
    res = sl.invariance(path, x, shifts=[(0, 0), (8, 0), (0, 8), (1, 3)])  # circular, integer: auto tries it
    assert res.method == "exact" and res.certificate is not None and not res.certificate.holds
    assert "an ONNX model" in res.certificate.reason
    with pytest.raises(ValueError, match="certify=True, but the polyphase certificate does not hold: an ONNX model"):
        sl.invariance(path, x, shifts=2, certify=True)


def test_a_batch_fixed_at_one_runs_image_by_image(tmp_path, exported):
    model, dynamic = exported["maxpool_fc"]
    fixed = export(model, tmp_path / "one.onnx", batch=1)
    x = images(5)
    with pytest.warns(UserWarning, match="fixed batch of 1: shiftlab runs every image in a pass of its own"):
        one = sl.equivariance(fixed, x, shifts=1)
    many = sl.equivariance(dynamic, x, shifts=1)
    for a, b in zip(one.layers, many.layers, strict=True):
        assert a.error_by_shift == pytest.approx(b.error_by_shift, rel=1e-5, abs=1e-7)
    with pytest.warns(UserWarning, match="fixed batch of 1"):
        assert sl.invariance(fixed, x, shifts=1).consistency == sl.invariance(dynamic, x, shifts=1).consistency


# --- errors ------------------------------------------------------------------------------------------


def graph_file(path: Path, inputs: list, body: list, outputs: list) -> Path:
    model = helper.make_model(helper.make_graph(body, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def relu_graph(path: Path, shape: list, elem=TensorProto.FLOAT) -> Path:
    return graph_file(path, [helper.make_tensor_value_info("x", elem, shape)],
                      [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT), helper.make_node("Relu", ["f"], ["y"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])


def two_inputs(path: Path) -> Path:
    shape = ["N", 1, 8, 8]
    return graph_file(path, [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "z")],
                      [helper.make_node("Add", ["x", "z"], ["y"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])


def truncated(path: Path, exported) -> Path:
    data = exported["maxpool_fc"][1].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_file(path: Path) -> Path:
    path.write_text("not a model")
    return path


ERRORS = {
    "missing file": (lambda p, e: p / "nowhere.onnx", FileNotFoundError, r"ONNX model file .*nowhere.onnx does not exist"),
    "not onnx": (lambda p, e: text_file(p / "text.onnx"), ValueError,
                 r"text.onnx is not a valid ONNX model \(.*\); export it again"),
    "truncated": (lambda p, e: truncated(p / "half.onnx", e), ValueError, r"half.onnx is not a valid ONNX model"),
    "two inputs": (lambda p, e: two_inputs(p / "two.onnx"), ValueError,
                   r"has 2 inputs \['x', 'z'\]; shiftlab measures a model whose only input is an image batch"),
    "rank 2": (lambda p, e: relu_graph(p / "vec.onnx", ["N", 64]), ValueError,
               r"input 'x' has shape \[N, 64\], not an image batch \[N, C, H, W\]"),
    "uint8 input": (lambda p, e: relu_graph(p / "u8.onnx", ["N", 1, 8, 8], TensorProto.UINT8), ValueError,
                    r"input 'x' is uint8; shiftlab shifts float images .* export the model with a float input"),
    "fixed batch": (lambda p, e: export(e["maxpool_fc"][0], p / "four.onnx", batch=4), ValueError,
                    r"fixed batch dimension of 4 .* dynamic_axes=\{'input': \{0: 'batch'\}\}.* dynamic_shapes=.*"
                    r"batch of 1, which shiftlab runs one image at a time"),
    "fixed size": (lambda p, e: e["maxpool_fc"][1], ValueError,
                   r"input 'input' is fixed at 24x24 \(\[\?, 1, 24, 24\]\), the images it would see are 20x20: "
                   r"resize the images to 24x24, measure windows of that size \(mode='crop', crop_size=\(24, 24\)\)"),
    "channels": (lambda p, e: e["maxpool_fc"][1], ValueError,
                 r"input 'input' \[\?, 1, 24, 24\] takes 1 channel, the images have 3: give images with 1 channel"),
    "not a path to onnx": (lambda p, e: p / "model.pt", ValueError, r"a model given as a path must be an ONNX file"),
}


def error_images(case: str) -> torch.Tensor:
    return {"fixed size": images(2, 20), "channels": torch.rand(2, 3, SIZE, SIZE)}.get(case, images(2, 8))


@pytest.mark.parametrize("measure", ["invariance", "equivariance"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_models_get_clear_errors_and_stay_as_they_were(tmp_path, exported, case, measure):
    make, error, match = ERRORS[case]
    path = make(tmp_path, exported)
    before = digest(path) if path.exists() else None
    with pytest.raises(error, match=match):
        getattr(sl, measure)(str(path), error_images(case), shifts=1)
    assert (digest(path) if path.exists() else None) == before


def test_crop_windows_fit_a_fixed_input_size(exported):
    model, path = exported["maxpool_fc"]
    x = images(3, 28)
    o = sl.invariance(path, x, shifts=2, mode="crop", crop_size=(SIZE, SIZE))
    t = sl.invariance(model, x, shifts=2, mode="crop", crop_size=(SIZE, SIZE))
    assert o.consistency == t.consistency and o.clean_consistency == t.clean_consistency


def test_devices_for_onnx(exported):
    _, path = exported["maxpool_fc"]
    assert OnnxRunner(path, "auto").device.type == ("cuda" if torch.cuda.is_available()
                                                    and "CUDAExecutionProvider" in ort.get_available_providers()
                                                    else "cpu")
    assert sl.invariance(path, images(2), shifts=1, device="cpu").device == "cpu"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="onnxruntime-gpu|CUDA is not available here"):
            OnnxRunner(path, "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        OnnxRunner(path, "tpu")


def test_auto_batch_size_counts_every_map(exported):
    _, path = exported["maxpool_fc"]
    runner = OnnxRunner(path)
    with runner.session():
        per_image = runner.bytes_per_image(images(1))
    # input 24x24, then 16-channel maps (BN folded into the conv) halving in size, then 576 + 10
    maps = (24 * 24 + 2 * 8 * 24 * 24 + 8 * 12 * 12 + 2 * 16 * 12 * 12 + 16 * 6 * 6 + 2 * 32 * 6 * 6 + 32 * 3 * 3
            + 288 + 10) * 4
    assert per_image == maps
    res = sl.invariance(path, images(3), shifts=1, batch_size="auto")
    assert res.batch_size >= 1
