"""Tests for shiftlab.conversion: replacement counts on nested models, weights kept, original
untouched, rejection of unconvertible layers, channel inference, exact APS invariance. The trace's
findings (functional downsampling, APS branch merges, the invariance check) are tested in
``test_conversion_trace.py``."""

from __future__ import annotations

import itertools
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from shiftlab.conversion import ConversionReport, ConversionResult, convert
from shiftlab.nn import APSPool2d, BlurPool2d, MaxAPSPool2d, MaxBlurPool2d
from shiftlab.zoo import build


def digits(n: int = 32, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Real 8x8 digit scans (sklearn), centred on a 32x32 zero canvas, values in [0, 1]."""
    data = load_digits()
    x = torch.tensor(data.images[:n], dtype=dtype).unsqueeze(1) / 16.0
    return F.pad(x, (12, 12, 12, 12)), torch.tensor(data.target[:n])


def max_shift_error(model: nn.Module, x: torch.Tensor) -> float:
    """Max abs logit change over every circular shift (torch.roll) of the 32x32 batch ``x``."""
    model.eval()
    h, w = x.shape[-2:]
    with torch.no_grad():
        ref = model(x)
        shifted = torch.cat([torch.roll(x, (dy, dx), (-2, -1))
                             for dy in range(h) for dx in range(w)])
        out = torch.cat([model(part) for part in shifted.split(1024)])
    return (out.view(-1, *ref.shape) - ref).abs().max().item()


class Block(nn.Module):
    """Residual block: strided conv branch plus an avg-pool shortcut."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1))
        self.shortcut = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
        ])
        self.heads = nn.ModuleDict({"pool": nn.MaxPool2d(2, stride=2),
                                    "cls": nn.Conv2d(16, 10, 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return self.heads["cls"](self.heads["pool"](x)).mean((2, 3))


STRIDED_PATHS = {"block.body.0": "conv", "stages.1": "conv", "block.shortcut": "avg",
                 "stages.0.2": "max", "heads.pool": "max"}


# --------------------------------------------------------------------------- nested models


@pytest.mark.parametrize("source", ["example", "built", "static"])
def test_nested_blur_counts_and_types(source: str) -> None:
    torch.manual_seed(0)
    model = Nested()
    x = torch.randn(2, 3, 32, 32)
    new, report = convert(model, "blur", example_input=x if source == "example" else None,
                          trace=source != "static", placement="after_conv")
    assert isinstance(report, ConversionReport)
    assert report.counts() == {"Conv2d -> Conv2d+BlurPool2d": 2, "AvgPool2d -> BlurPool2d": 1,
                               "MaxPool2d -> MaxBlurPool2d": 2}
    assert sorted(report.paths) == sorted(STRIDED_PATHS)
    modules = dict(new.named_modules())
    assert isinstance(modules["block.body.0.pool"], BlurPool2d)
    assert modules["block.body.0.conv"].stride == (1, 1)
    assert isinstance(modules["block.shortcut"], BlurPool2d)
    assert modules["block.shortcut"].channels == 8
    assert isinstance(modules["stages.0.2"], MaxBlurPool2d)
    assert isinstance(modules["heads.pool"], MaxBlurPool2d) and modules["heads.pool"].channels == 16
    assert new(x).shape == model(x).shape == (2, 10)
    sources = {e.path: e.channels_from for e in report.entries if e.channels is not None}
    if source == "static":  # no forward pass: guessed from the layer registered before
        assert sources == {"block.shortcut": "block.body.2", "stages.0.2": "stages.0.0",
                           "heads.pool": "stages.1"}
        assert report.trace == "not traced: trace=False" and report.invariance_check is None
        assert all(e.old_shape is None for e in report.entries)
    else:  # measured on the traced input (given, or built from the first conv: [2, 3, 32, 32])
        assert set(sources.values()) == {"example_input"}
        assert all(e.old_shape == e.new_shape is not None for e in report.entries)
        assert report.trace == f"{'example_input' if source == 'example' else 'built input'} "\
                               "(2, 3, 32, 32)"


def test_nested_aps_circular_counts() -> None:
    model = Nested()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Block: two downsampling branches, one phase choice
        new, report = convert(model, "aps", "circular")
    assert [str(s) for s in report.shared_phases] == [
        "add() in block.forward at 16x16: block.body.0 | block.shortcut: "
        "block.shortcut.aps follows block.body.0.pool"]
    assert report.merges == [] and new.block.shortcut.aps.leader is new.block.body[0].pool
    with pytest.warns(UserWarning, match=r"APS phases not shared.*block\.body\.0 \| block\.shortcut"):
        assert convert(model, "aps", "circular", share_phases=False).report.shared_phases == []
    counts = report.counts()
    assert counts.pop("Conv2d: circular padding") == 3  # stem, block.body.2, stages.0.0
    assert counts == {"Conv2d -> Conv2d+APSPool2d": 2,
                      "AvgPool2d -> CircularPad2d+AvgPool2d+APSPool2d": 1,
                      "MaxPool2d -> MaxAPSPool2d": 2}
    convs = [m for m in new.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convs) == 5 and {c.padding_mode for c in convs} == {"circular"}
    assert {c.stride for c in convs} == {(1, 1)}
    assert isinstance(dict(new.named_modules())["heads.pool"], MaxAPSPool2d)
    x = torch.randn(2, 3, 32, 32)
    assert new(x).shape == (2, 10)


def test_padding_only() -> None:
    model = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, padding=1),
                          nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(4, 4, 3, stride=2))
    new, report = convert(model, downsample=None, padding="circular")
    assert report.paths == ["0", "2", "3"]
    assert isinstance(new[0], nn.CircularPad2d) and new[2].padding_mode == "circular"
    assert new[4].stride == (2, 2)  # downsample=None leaves strided layers alone
    x = torch.randn(1, 1, 16, 16)
    assert new(x).shape == model(x).shape
    # the stride-1 part of the network is now exactly circularly equivariant
    head = new[:4]
    assert torch.allclose(head(torch.roll(x, (3, 5), (-2, -1))),
                          torch.roll(head(x), (3, 5), (-2, -1)), atol=1e-6)


def test_shared_module_and_root_layer() -> None:
    pool = nn.MaxPool2d(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), pool, nn.Conv2d(4, 4, 3, padding=1), pool)
    new, report = convert(model, "blur")
    assert len(report) == 1  # one module, registered at two paths
    assert new[1] is new[3] and isinstance(new[1], MaxBlurPool2d)
    assert new(torch.randn(1, 1, 16, 16)).shape == (1, 4, 4, 4)

    conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
    result = convert(conv, "aps")
    assert isinstance(result, ConversionResult)
    assert isinstance(result.model, nn.Sequential) and isinstance(result.model.pool, APSPool2d)
    assert result.report.paths == [""]


# --------------------------------------------------------------------------- weights, original


def test_weights_kept_and_original_untouched() -> None:
    torch.manual_seed(0)
    model = Nested()
    model.stem.requires_grad_(False)
    model.block.eval()
    calls = []
    model.heads["pool"].register_forward_hook(lambda *a: calls.append("pool"))
    model.stem.register_forward_hook(lambda *a: calls.append("stem"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: m.training for n, m in model.named_modules()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    hooks = {n: len(m._forward_hooks) for n, m in model.named_modules()}
    ids = {n: id(m) for n, m in model.named_modules()}

    with pytest.warns(UserWarning, match="heads.pool"):  # its hook cannot be carried over
        new, report = convert(model, "aps", "circular", example_input=torch.randn(2, 3, 32, 32))
    assert calls == []  # the dry runs use a hook-free copy

    assert set(model.state_dict()) == set(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert {n: m.training for n, m in model.named_modules()} == flags
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    assert {n: len(m._forward_hooks) for n, m in model.named_modules()} == hooks
    assert {n: id(m) for n, m in model.named_modules()} == ids
    assert model.stem.padding_mode == "zeros" and model.stages[1].stride == (2, 2)

    old_params = dict(model.named_parameters())
    for path, param in new.named_parameters():
        old_path = path.replace(".conv.", ".")
        assert torch.equal(param, old_params[old_path]), path
        assert param is not old_params[old_path]
        assert param.requires_grad == old_params[old_path].requires_grad
    assert torch.equal(new.block.body[0].conv.weight, model.block.body[0].weight)
    assert not new.block.training and not new.block.body[0].pool.training and new.training
    new(torch.randn(1, 3, 32, 32))
    assert calls == ["stem"]  # hooks on kept layers stay


def test_filt_size_one_reproduces_the_original() -> None:
    """BlurPool with filt_size 1 is plain subsampling: the conversion computes the same function
    (with Zhang's placement in eval mode, where BatchNorm acts on each position alone); an avg
    pool k == s is a blur with filt_size k."""
    torch.manual_seed(0)
    for name, placement in itertools.product(["strided_gap", "maxpool_gap", "maxpool_fc"],
                                             ["after_conv", "zhang"]):
        model = build(name).double().train(placement == "after_conv")
        x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
        new, _ = convert(model, "blur", filt_size=1, placement=placement, blur_stem=True)
        assert torch.allclose(new(x), model(x), atol=1e-12, rtol=0)
    avg = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(2)).double()
    new, report = convert(avg, "blur", filt_size=2)
    assert report.counts() == {"AvgPool2d -> BlurPool2d": 1}
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert torch.allclose(new(x), avg(x), atol=1e-12, rtol=0)


def test_dtype_and_mode_follow_the_model() -> None:
    model = Nested().double().eval()
    new, _ = convert(model, "blur")
    assert not new.training and not new.heads["pool"].training
    assert new.heads["pool"].blur.filt.dtype == torch.float64
    assert new(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


# --------------------------------------------------------------------------- rejection


def test_unconvertible_layers_are_named() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Sequential(nn.FractionalMaxPool2d(2, output_ratio=0.5), nn.LPPool2d(2, 2)),
        nn.ModuleDict({"ada": nn.AdaptiveMaxPool2d(4), "ok": nn.AdaptiveAvgPool2d(1)}),
        nn.Conv2d(4, 4, 3, stride=(2, 1)),
        nn.MaxPool2d(2),  # convertible: not listed
    )
    with pytest.raises(ValueError) as info:
        convert(model, "blur")
    message = str(info.value)
    for path in ["2.0", "2.1", "4 "]:
        assert f"\n  {path.strip()} (" in message, path
    assert "3.ok" not in message and "\n  5 (" not in message
    # a ceil_mode pool and a non-global adaptive pool: decided on the trace (size_problems)
    assert "\n  1 (" not in message and "\n  3.ada (" not in message and "skip=" in message
    with pytest.warns(UserWarning, match="could not trace the model: the built input fails"):
        new, report = convert(model, "blur", skip=["1", "2", "3.ada", "4"])  # ModuleDict runs not
    assert report.paths == ["5"] and report.trace.startswith("not traced: the built input fails")
    assert new[1] is not model[1] and isinstance(new[1], nn.MaxPool2d)
    # downsample=None leaves strided layers alone, so nothing is rejected
    with pytest.warns(UserWarning, match="could not trace"):
        assert len(convert(model, None).report) == 0


def test_circular_padding_rejects_padded_transposed_conv() -> None:
    model = nn.Sequential(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1),
                          nn.ConvTranspose2d(2, 2, 2, stride=2))
    with pytest.raises(ValueError, match=r"\n  0 \(ConvTranspose2d\)"):
        convert(model, "blur", "circular")
    new, report = convert(model, "blur")  # upsampling is left alone
    assert len(report) == 0


def test_bad_options() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2))
    with pytest.raises(ValueError, match="downsample"):
        convert(model, "lanczos")
    with pytest.raises(ValueError, match="padding"):
        convert(model, "blur", "reflect")
    with pytest.raises(ValueError, match="pad_type"):
        convert(model, "aps", pad_type="reflect")
    with pytest.raises(ValueError, match="filt_size"):
        convert(model, "blur", filt_size=9)
    with pytest.raises(ValueError, match="norm"):
        convert(model, "aps", norm=3)


def test_channels_come_from_the_trace() -> None:
    model = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1))
    x = torch.randn(1, 3, 8, 8)
    for example in [None, x]:  # built from the first conv's in_channels, or given
        new, report = convert(model, "blur", example_input=example)
        assert report.entries[0].channels == 3
        assert report.entries[0].channels_from == "example_input"
        assert new(x).shape == (1, 4, 4, 4)
    # without a trace nothing precedes the pool to guess from
    with pytest.raises(ValueError, match=r"channel count.*\['0'\].*example_input"):
        convert(model, "blur", trace=False)
    with pytest.raises(ValueError, match="trace=True"):
        convert(model, "blur", example_input=x, trace=False)
    with pytest.warns(UserWarning, match="no 2-D convolution"), \
            pytest.raises(ValueError, match="channel count"):
        convert(nn.Sequential(nn.MaxPool2d(2)), "blur")


def test_example_input_flags_shape_changes_and_failures() -> None:
    valid_pool = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(3, 2))
    x = torch.randn(1, 1, 32, 32)
    with pytest.warns(UserWarning, match=r"1: \(1, 4, 15, 15\) -> \(1, 4, 16, 16\)"):
        _, report = convert(valid_pool, "blur", "circular", example_input=x)
    assert report.entries[-1].shape_changed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = convert(valid_pool, "blur", example_input=x)  # blur keeps sizes
    assert not any(e.shape_changed for e in report.entries)

    odd = nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1))
    with pytest.raises(ValueError, match=r"converted model in 0.*divisible"):
        convert(odd, "aps", example_input=x)


@pytest.mark.parametrize("layer", [
    nn.MaxPool2d(3, 2, padding=1), nn.MaxPool2d(3, 2), nn.MaxPool2d((3, 2), 2),
    nn.MaxPool2d(3, 2, padding=1, dilation=2), nn.AvgPool2d(3, 2, padding=1), nn.AvgPool2d(3, 2),
    nn.Conv2d(4, 4, 4, stride=2, padding=1), nn.Conv2d(4, 4, 3, stride=3, padding=1),
], ids=repr)
@pytest.mark.parametrize("size", [32, 31])
def test_blur_keeps_output_sizes(layer: nn.Module, size: int) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 1), layer)
    x = torch.randn(1, 1, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, report = convert(model, "blur", example_input=x, placement="after_conv")
    assert len(report) == 1 and new(x).shape == model(x).shape
    assert report.entries[0].new_shape == tuple(model(x).shape)


def test_report_formats() -> None:
    _, report = convert(Nested(), "blur", "circular", placement="after_conv")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["downsample"] == "blur" and data["options"]["pad_type"] == "circular"
    assert len(data["entries"]) == len(report) == 8
    assert {"path", "change", "old_kind", "new_kind", "old", "new"} <= set(data["entries"][0])
    assert data["trace"] == "built input (2, 3, 32, 32)" and data["unconverted"] == []
    assert data["merges"] == [] and data["invariance_check"] == report.invariance_check > 0
    text = str(report)
    assert text.splitlines()[0].endswith("8 layer(s) changed")
    assert "trace: built input (2, 3, 32, 32)" in text and "invariance check" in text
    for path in STRIDED_PATHS:
        assert path in text


# --------------------------------------------------------------------------- exact invariance


@pytest.mark.parametrize("name", ["strided_gap", "maxpool_gap", "strided_gmp"])
def test_aps_circular_conversion_is_exactly_invariant(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, seed=3).double()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    assert max_shift_error(model, x) > 1e-6  # the original is not invariant
    new, _ = convert(model, "aps", "circular")
    assert max_shift_error(new, x) < 1e-12
    # blur + circular is invariant to shifts by multiples of the total stride only
    blurred, _ = convert(model, "blur", "circular")
    with torch.no_grad():
        ref = blurred(x)
        assert (blurred(torch.roll(x, (8, -16), (-2, -1))) - ref).abs().max() < 1e-12
        assert (blurred(torch.roll(x, (1, 0), (-2, -1))) - ref).abs().max() > 1e-9


def test_aps_conversion_stays_invariant_after_training() -> None:
    x, y = digits(32)
    new, _ = convert(build("maxpool_gap", seed=4).double(), "aps", "circular")
    opt = torch.optim.SGD(new.parameters(), lr=0.05, momentum=0.9)
    new.train()
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(new(x), y)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    assert max_shift_error(new, x[:2]) < 1e-12
