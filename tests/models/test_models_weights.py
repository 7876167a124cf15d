"""shiftlab.models factories: ``weights=`` (a local state-dict file) and torchvision's keyword arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from shiftlab.models import MODELS, mobilenet_v2, resnet18, resnet34, resnet50

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_saved_state_dict_loads_back_with_equal_outputs(name: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = MODELS[name](num_classes=10)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the buffers matter too
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    torch.manual_seed(2)
    loaded = MODELS[name](num_classes=10, weights=tmp_path / "w.pt")
    assert loaded.training  # as a torchvision factory returns it
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(source.eval()(x), loaded.eval()(x))


def test_weights_accepts_a_string_path(tmp_path: Path) -> None:
    torch.save(resnet18(num_classes=3).state_dict(), tmp_path / "w.pt")
    assert resnet18(num_classes=3, weights=str(tmp_path / "w.pt")).fc.out_features == 3


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth does not exist"):
        resnet18(weights=tmp_path / "nope.pth")


def test_a_file_that_is_no_state_dict_says_so(tmp_path: Path) -> None:
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises(ValueError, match="(?s)cannot read weights from .*text.pth.*torch.save"):
        resnet18(weights=tmp_path / "text.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        resnet18(weights=tmp_path / "list.pth")


def test_weights_of_another_model_name_the_keys(tmp_path: Path) -> None:
    torch.save(resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"missing layer1\.2\.conv1\.weight \(64, 64, 3, 3\)"):
        resnet34(weights=tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"fc\.weight: file \(1000, 512\), model \(10, 512\)"):
        resnet18(num_classes=10, weights=tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"\(MobileNetV2\): missing features\.0\.0\.weight \(32, 3, 3, 3\)"):
        mobilenet_v2(weights=tmp_path / "r18.pth")


def test_bottleneck_strides_on_its_3x3_conv() -> None:  # torchvision's v1.5
    block = resnet50().layer2[0]
    assert (block.conv1.stride, block.conv2.stride, block.downsample[0].stride) == ((1, 1), (2, 2), (2, 2))


def test_zero_init_residual_zeroes_the_last_norm_of_every_branch() -> None:
    for model, last in ((resnet18(zero_init_residual=True), "bn2"), (resnet50(zero_init_residual=True), "bn3")):
        weights = [getattr(block, last).weight for layer in (model.layer1, model.layer4) for block in layer]
        assert all(torch.all(w == 0) for w in weights)
    assert torch.all(resnet18().layer1[0].bn2.weight == 1)


def test_norm_layer_replaces_every_batch_norm() -> None:
    model = resnet18(norm_layer=lambda c: nn.GroupNorm(8, c))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.GroupNorm) for m in model.modules()) == 20


def test_mobilenet_width_mult_keeps_the_names() -> None:
    narrow, wide = mobilenet_v2(width_mult=0.5, num_classes=5), mobilenet_v2()
    assert list(narrow.state_dict()) == list(wide.state_dict())
    assert narrow.features[0][0].out_channels == 16 and narrow.classifier[1].in_features == 1280
    with torch.no_grad():
        assert narrow.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 5)


def test_dropout_is_passed_on() -> None:
    assert mobilenet_v2(dropout=0.1).classifier[0].p == 0.1
    assert MODELS["vgg11"](dropout=0.3, num_classes=2).classifier[2].p == 0.3
