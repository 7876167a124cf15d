"""ONNX export of converted models (``docs/onnx.md``, "Exporting a converted model"): an anti-aliased
and an APS ResNet-18 export without warnings through :func:`shiftlab.export_onnx`, onnxruntime
computes their logits, and they measure through the ONNX path as the torch models do (the APS one
exactly invariant to circular shifts there too); BlurPool and APS layers also go through the legacy
exporter without a warning from shiftlab's code; every misuse gets a clear error."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import shiftlab as sl
from shiftlab import onnx_export
from shiftlab.models import resnet18, spread_classifier
from shiftlab.nn import APSPool2d, BlurPool2d

pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install 'shiftlab[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="export_onnx needs the onnx extra: pip install 'shiftlab[onnx]'")
pytest.importorskip("onnxscript", reason="torch's exporter needs onnxscript: pip install 'shiftlab[onnx]'")

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64  # a multiple of ResNet's total stride 32: APS is exactly invariant to every circular shift
IMAGES = torch.randn(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
#: small, odd, large and wrapping circular shifts
SHIFTS = [(0, 0), (1, 0), (0, 1), (1, 1), (-1, 2), (3, -5), (7, 13), (-16, 9)]
LOGITS_TOL = 1e-4


def spread(model: nn.Module) -> nn.Module:
    """At random init nearly every image gets one class: spread them (``spread_classifier``)."""
    return spread_classifier(model, model.fc, IMAGES)


def export_quietly(model: nn.Module, path: Path) -> sl.OnnxExport:
    """:func:`shiftlab.export_onnx` with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return sl.export_onnx(model, IMAGES[:2], path)


@pytest.fixture(scope="module")
def blur(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, sl.OnnxExport]:
    model = sl.convert(resnet18(num_classes=10), "blur", example_input=IMAGES[:2]).model.eval()
    spread(model)
    return model, export_quietly(model, tmp_path_factory.mktemp("blur") / "resnet18_blur.onnx")


@pytest.fixture(scope="module")
def aps(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, sl.OnnxExport]:
    model, report = sl.convert(resnet18(num_classes=10), "aps", padding="circular", example_input=IMAGES[:2])
    assert report.shared_phases, "the skip branches should follow the main branches' phases"
    spread(model.eval())
    return model, export_quietly(model, tmp_path_factory.mktemp("aps") / "resnet18_aps.onnx")


def onnx_logits(path: Path, images: Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": images.numpy()})[0]


@pytest.mark.parametrize("name", ["blur", "aps"])
def test_logits_equal_torch_at_any_batch_and_shift(name: str, request: pytest.FixtureRequest) -> None:
    model, done = request.getfixturevalue(name)
    assert done.max_abs_diff < LOGITS_TOL and done.opset == onnx_export.DEFAULT_OPSET and done.dynamic_batch
    images = torch.roll(IMAGES[:3], (5, -3), dims=(-2, -1))  # another batch size, shifted (another APS phase)
    with torch.no_grad():
        expected = model(images).numpy()
    assert np.abs(onnx_logits(done.path, images) - expected).max() < LOGITS_TOL


@pytest.mark.parametrize("name", ["blur", "aps"])
def test_invariance_through_onnx_equals_torch(name: str, request: pytest.FixtureRequest) -> None:
    model, done = request.getfixturevalue(name)
    through_torch = sl.invariance(model, IMAGES, shifts=SHIFTS, certify=False)
    through_onnx = sl.invariance(done.path, IMAGES, shifts=SHIFTS, certify=False)
    assert through_torch.degenerate is None and sum(n > 0 for n in through_torch.class_counts) > 2
    for field in ("consistency", "clean_consistency", "flip_rate", "class_counts", "clean_consistency_by_shift"):
        assert getattr(through_onnx, field) == getattr(through_torch, field), field
    assert through_onnx.top1_prob_change == pytest.approx(through_torch.top1_prob_change, abs=1e-6)
    if name == "aps":  # circular padding, shared phases: exactly invariant, through onnxruntime too
        assert through_onnx.consistency == 1.0
    else:
        assert through_onnx.consistency < 1.0  # zero padding: the measurement is not trivial


def test_layers_export_through_the_legacy_exporter_without_shiftlab_warnings(tmp_path: Path) -> None:
    lead = APSPool2d(4, filt_size=3, return_indices=True)
    model = _LeaderFollower(lead, APSPool2d(4, filt_size=3).follow(lead)).eval()
    x = torch.randn(2, 4, 16, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(model, (x,), str(tmp_path / "layers.onnx"), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    ours = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            if w.category is torch.jit.TracerWarning or "shiftlab" in w.filename]
    assert not ours
    images = torch.roll(torch.randn(3, 4, 16, 16), (1, 3), dims=(-2, -1))
    with torch.no_grad():
        expected = model(images).numpy()
    assert np.abs(onnx_logits(tmp_path / "layers.onnx", images) - expected).max() < 1e-5


class _LeaderFollower(nn.Module):
    """Circular and reflect BlurPools, then an APS leader and a follower on two maps, added."""

    def __init__(self, lead: APSPool2d, follower: APSPool2d) -> None:
        super().__init__()
        self.circular = BlurPool2d(4, stride=1, pad_type="circular")
        self.reflect = BlurPool2d(4, stride=1, pad_type="reflect")
        self.lead, self.follower = lead, follower

    def forward(self, x: Tensor) -> Tensor:
        main, _ = self.lead(self.circular(x))
        return main + self.follower(self.reflect(x).relu())


class _Exporting(nn.Module):
    """Computes something else while exported: the file cannot match the module."""

    def forward(self, x: Tensor) -> Tensor:
        return x + 1 if torch.compiler.is_exporting() else x


class _DataDependent(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x if x.sum() > 0 else -x


class _FixedBatch(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x + torch.ones(2, 1, 1, 1)


def test_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="training mode: call model.eval"):
        sl.export_onnx(nn.Conv2d(1, 1, 3), x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="must end in .onnx"):
        sl.export_onnx(nn.Identity().eval(), x, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="floating tensor"):
        sl.export_onnx(nn.Identity().eval(), x.to(torch.uint8), tmp_path / "m.onnx")
    with pytest.raises(sl.OnnxExportError, match="differ from _Exporting's.*left at"):
        sl.export_onnx(_Exporting().eval(), x, tmp_path / "m.onnx")
    with pytest.raises(sl.OnnxExportError, match="could not export _DataDependent: GuardOnDataDependentSymNode"):
        sl.export_onnx(_DataDependent().eval(), x, tmp_path / "d.onnx")
    with pytest.raises(sl.OnnxExportError, match="_FixedBatch fixes its batch size: .* batch axis of 2"):
        sl.export_onnx(_FixedBatch().eval(), x, tmp_path / "b.onnx")
    assert not sl.export_onnx(_FixedBatch().eval(), x, tmp_path / "b.onnx", dynamic_batch=False).dynamic_batch
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # importlib.util.find_spec then finds none
    with pytest.raises(ImportError, match=r"needs onnxscript: pip install .*shiftlab\[onnx\]"):
        sl.export_onnx(nn.Identity().eval(), x, tmp_path / "m.onnx")
