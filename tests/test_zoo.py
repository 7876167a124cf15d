"""Tests for shiftlab.zoo: registry, shapes, strides, parameter counts, training, APS invariance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import shiftlab.zoo as zoo
from shiftlab.zoo import ZOO, ZooNet, build, count_parameters, describe, names

EXPECTED = ["maxpool_fc", "strided_fc", "fcn_gap", "fcn_gmp", "maxpool_gap", "blurpool_gap",
            "aps_gap"]
SAME_TRUNK = ["maxpool_fc", "strided_fc", "fcn_gap", "maxpool_gap"]


def digits(n: int = 64, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Real 8x8 digit scans (sklearn), centred on a 32x32 zero canvas, values in [0, 1]."""
    data = load_digits()
    x = torch.tensor(data.images[:n], dtype=dtype).unsqueeze(1) / 16.0
    return F.pad(x, (12, 12, 12, 12)), torch.tensor(data.target[:n])


def train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3,
                lr: float = 0.1) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def all_circular_shifts(x: torch.Tensor) -> torch.Tensor:
    """``[H * W * N, C, H, W]``: every circular shift (torch.roll) of every image in ``x``."""
    h, w = x.shape[-2:]
    return torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(h) for dx in range(w)])


def max_shift_error(model: nn.Module, x: torch.Tensor, chunk: int = 1024) -> float:
    """Max abs difference of logits over all circular shifts of ``x`` against the unshifted."""
    model.eval()
    with torch.no_grad():
        ref = model(x)
        shifted = all_circular_shifts(x)
        out = torch.cat([model(part) for part in shifted.split(chunk)])
    return (out.view(-1, *ref.shape) - ref).abs().max().item()


# --------------------------------------------------------------------------- registry


def test_names_and_registry() -> None:
    assert names()[: len(EXPECTED)] == EXPECTED
    assert set(names()) == set(ZOO)
    for name in names():
        builder, description = ZOO[name][:2]
        assert callable(builder)
        assert describe(name) == description and "\n" not in description and description


def test_unknown_name_lists_names() -> None:
    with pytest.raises(ValueError, match="unknown zoo model 'resnet'") as info:
        build("resnet")
    for name in EXPECTED:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="maxpool_fc"):
        describe("nope")


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="filt_size"):
        build("fcn_gap", filt_size=3)
    with pytest.raises(ValueError, match="padding_mode"):
        build("fcn_gap", padding_mode="same")
    with pytest.raises(ValueError, match="input_size"):
        build("maxpool_fc", input_size=(32, 0))
    with pytest.raises(ValueError, match="at least 8x8"):
        build("maxpool_fc", input_size=4)
    with pytest.raises(ValueError, match="width"):
        build("fcn_gap", width=0)


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", EXPECTED)
def test_stride_paths_and_output(name: str) -> None:
    model = build(name, num_classes=10, in_channels=1, width=16, input_size=32)
    assert isinstance(model, ZooNet) and model.name == name
    assert model.total_stride == 8 and zoo.TOTAL_STRIDE == 8
    paths = dict(model.named_modules())
    assert isinstance(paths["features.0"], nn.Conv2d) and isinstance(paths["features.1"], nn.BatchNorm2d) and isinstance(paths["features.2"], nn.ReLU)
    assert "head.0" in paths
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64]
    seen = {}
    model.features.register_forward_hook(lambda m, a, out: seen.update(shape=out.shape))
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10)
    assert seen["shape"] == (2, 64, 32 // 8, 32 // 8)


@pytest.mark.parametrize("name", ["fcn_gap", "fcn_gmp", "maxpool_gap", "blurpool_gap", "aps_gap"])
def test_gap_models_take_other_sizes(name: str) -> None:
    model = build(name, in_channels=3, num_classes=5)
    seen = {}
    model.features.register_forward_hook(lambda m, a, out: seen.update(shape=out.shape))
    assert model(torch.randn(1, 3, 48, 24)).shape == (1, 5)
    assert seen["shape"][-2:] == (6, 3)


def test_trunk_parameter_counts_equal() -> None:
    models = {name: build(name) for name in EXPECTED}
    trunk = {name: count_parameters(m.features) for name, m in models.items()}
    # conv3x3: (1*9+1)*16 + (16*9+1)*32 + (32*9+1)*64, BatchNorm: 2 * (16 + 32 + 64)
    assert set(trunk.values()) == {160 + 4640 + 18496 + 224}
    for name in SAME_TRUNK:
        counts = models[name].parameter_counts()
        assert counts["total"] == counts["features"] + counts["head"] == count_parameters(
            models[name])
    fc_head = 64 * 4 * 4 * 10 + 10
    gap_head = 64 * 10 + 10
    assert count_parameters(models["maxpool_fc"].head) == fc_head
    assert count_parameters(models["strided_fc"].head) == fc_head
    for name in ["fcn_gap", "fcn_gmp", "maxpool_gap", "blurpool_gap", "aps_gap"]:
        assert count_parameters(models[name].head) == gap_head
    assert count_parameters(build("maxpool_fc", input_size=(40, 24)).head) == 64 * 5 * 3 * 10 + 10
    assert count_parameters(build("maxpool_fc", hidden=32).head) == 1024 * 32 + 32 + 32 * 10 + 10


def test_count_parameters_trainable_only() -> None:
    model = build("fcn_gap")
    model.features.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 650
    assert count_parameters(model) == 23520 + 650  # convs 23,296 + BatchNorm 224


def test_padding_modes() -> None:
    def modes(model: nn.Module) -> set[str]:
        return {m.padding_mode for m in model.features.modules() if isinstance(m, nn.Conv2d)}

    assert modes(build("fcn_gap")) == {"zeros"}
    assert modes(build("aps_gap")) == {"circular"}
    assert modes(build("fcn_gap", padding_mode="circular")) == {"circular"}
    assert modes(build("aps_gap", padding_mode="zeros")) == {"zeros"}
    blur = [m for m in build("blurpool_gap").modules() if type(m).__name__ == "BlurPool2d"]
    assert len(blur) == 3 and {b.pad_type for b in blur} == {"reflect"}
    blur = [m for m in build("blurpool_gap", padding_mode="circular", filt_size=3).modules()
            if type(m).__name__ == "BlurPool2d"]
    assert {(b.pad_type, b.filt_size) for b in blur} == {("circular", 3)}


def test_seed_is_reproducible_and_local() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = build("maxpool_fc", seed=7), build("maxpool_fc", seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = build("maxpool_fc", seed=8)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["maxpool_fc", "strided_fc"])
def test_fc_head_rejects_wrong_input_size(name: str) -> None:
    model = build(name, input_size=32)
    with pytest.raises(ValueError, match=r"built for 32x32 inputs, got 28x28"):
        model(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.zeros(1, 32, 32))
    model = build(name, input_size=(24, 40))
    assert model(torch.zeros(2, 1, 24, 40)).shape == (2, 10)
    with pytest.raises(ValueError, match="24x40"):
        model(torch.zeros(2, 1, 40, 24))


def test_aps_gap_requires_divisible_size() -> None:
    with pytest.raises(ValueError, match="divisible by its total stride 8"):
        build("aps_gap", input_size=30)
    with pytest.raises(ValueError, match="divisible by its total stride 8"):
        build("aps_gap", input_size=(32, 36))
    model = build("aps_gap")
    with pytest.raises(ValueError, match=r"divisible by its total stride 8 .*got 36x32"):
        model(torch.zeros(1, 1, 36, 32))
    assert model(torch.zeros(1, 1, 40, 16)).shape == (1, 10)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", EXPECTED)
def test_trains_on_real_digits(name: str) -> None:
    torch.manual_seed(0)
    x, y = digits(64)
    model = build(name, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    losses = train_steps(model, x, y, steps=3, lr=0.05)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[0] == pytest.approx(2.30, abs=0.3)  # ~log(10) at init
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert all(changed)


# --------------------------------------------------------------------------- APS invariance


def test_aps_gap_exactly_invariant_to_every_circular_shift() -> None:
    torch.manual_seed(0)
    model = build("aps_gap", seed=1).double()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    assert max_shift_error(model, x) < 1e-12
    # the reference: the same trunk with max pooling is not invariant at all
    maxpool = build("maxpool_gap", seed=1, padding_mode="circular").double()
    assert max_shift_error(maxpool, x) > 1e-6


def test_aps_gap_stays_invariant_after_training_on_digits() -> None:
    x, y = digits(48, dtype=torch.float64)
    model = build("aps_gap", seed=2).double()
    losses = train_steps(model, x, y, steps=3, lr=0.05)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert max_shift_error(model, x[:2]) < 1e-12
