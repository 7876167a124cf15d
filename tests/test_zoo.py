"""Tests for shiftlab.zoo: the factorial names, specs, build, shapes, parameters, training, APS invariance.

Model size (MACs, receptive field) is tested in tests/zoo/test_zoo_info.py, the exact shift theory
of every model in tests/zoo/test_zoo_theory.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import shiftlab.zoo as zoo
from shiftlab.nn import BlurPool2d, Conv2d, LearnedPool2d, MaxAPSPool2d, MaxBlurPool2d
from shiftlab.zoo import ZooNet, ZooSpec, build, count_parameters, describe, names, spec

pytestmark = pytest.mark.usefixtures("one_thread")

DOWNSAMPLINGS = ["strided", "maxpool", "blurstrided", "maxblur", "aps", "allconv", "avgpool", "learned", "learnedblur"]
HEADS = ["fc", "gap", "gmp"]
ALL = [f"{d}_{h}" for d in DOWNSAMPLINGS for h in HEADS]
POOL_HEADS = [n for n in ALL if not n.endswith("_fc")]


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


def max_shift_error(model: nn.Module, x: torch.Tensor, chunk: int = 1024) -> float:
    """Max abs difference of logits over all circular shifts of ``x`` against the unshifted."""
    h, w = x.shape[-2:]
    shifted = torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(h) for dx in range(w)])
    model.eval()
    with torch.no_grad():
        ref = model(x)
        out = torch.cat([model(part) for part in shifted.split(chunk)])
    return (out.view(-1, *ref.shape) - ref).abs().max().item()


def layers_of(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


# --------------------------------------------------------------------------- names and specs


def test_factors_and_names_in_plan_order() -> None:
    assert zoo.DOWNSAMPLINGS == tuple(DOWNSAMPLINGS) and zoo.HEADS == tuple(HEADS)
    assert names() == ALL and len(names()) == 27
    assert names()[:4] == ["strided_fc", "strided_gap", "strided_gmp", "maxpool_fc"]


@pytest.mark.parametrize("name", ALL)
def test_spec_round_trips_the_systematic_name(name: str) -> None:
    s = spec(name)
    assert isinstance(s, ZooSpec)
    assert f"{s.downsampling}_{s.head}" == s.name == name
    assert s.to_dict() == {"name": name, "downsampling": s.downsampling, "head": s.head,
                           "description": s.description}
    assert describe(name) == s.description and "\n" not in s.description and " x3, " in s.description
    with pytest.raises(AttributeError):
        s.name = "other"  # type: ignore[misc]  # frozen


def test_spec_descriptions_name_the_layers() -> None:
    assert spec("strided_gap") == ZooSpec("strided_gap", "strided", "gap",
                                          "conv3x3 stride 2-BN-ReLU x3, 1x1 conv, global average pool")
    assert spec("maxpool_fc").description == "conv3x3-BN-ReLU-MaxPool2d(2) x3, flatten, Linear"
    assert "BlurPool2d(stride 2)" in describe("blurstrided_gmp") and "global max pool" in describe("blurstrided_gmp")
    assert "MaxBlurPool2d" in describe("maxblur_gap") and "MaxAPSPool2d" in describe("aps_fc")


@pytest.mark.parametrize("bad", ["resnet", "fcn_gap", "blurpool_gap", "strided", "gap", "strided_gap_fc", 3])
def test_unknown_and_old_names_are_rejected_with_the_list(bad: object) -> None:
    with pytest.raises(ValueError, match="unknown zoo model") as info:
        build(bad)  # type: ignore[arg-type]
    for name in ALL:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="strided_gap"):
        spec(bad)  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"strided_gap .*'filt_size'.* accepts none"):
        build("strided_gap", filt_size=3)
    with pytest.raises(TypeError, match=r"'hidden'.*accepts \['filt_size', 'pad_type'\]"):
        build("maxblur_gap", hidden=8)
    with pytest.raises(TypeError, match=r"'pad_type'.*accepts \['norm', 'filt_size', 'hidden'\]"):
        build("aps_fc", pad_type="circular")
    with pytest.raises(ValueError, match="padding_mode"):
        build("strided_gap", padding_mode="same")
    with pytest.raises(ValueError, match="input_size"):
        build("maxpool_fc", input_size=(32, 0))
    with pytest.raises(ValueError, match="at least 8x8"):
        build("maxpool_fc", input_size=4)
    with pytest.raises(ValueError, match="width"):
        build("strided_gap", width=0)


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", ALL)
def test_every_model_builds_and_runs(name: str) -> None:
    s = spec(name)
    for in_channels, size in ((1, 32), (3, 40)):
        model = build(name, num_classes=7, in_channels=in_channels, width=8, input_size=size)
        assert isinstance(model, ZooNet) and model.name == name
        assert (model.downsampling, model.head_kind) == (s.downsampling, s.head)
        assert (model.num_classes, model.in_channels, model.total_stride) == (7, in_channels, 8)
        seen = {}
        model.features.register_forward_hook(lambda m, a, out, seen=seen: seen.update(shape=out.shape))
        out = model(torch.randn(2, in_channels, size, size))
        assert out.shape == (2, 7) and torch.isfinite(out).all()
        assert seen["shape"] == (2, 32, size // 8, size // 8)


@pytest.mark.parametrize("name", ALL)
def test_module_paths_and_layers_follow_the_spec(name: str) -> None:
    model = build(name)
    paths = dict(model.named_modules())
    assert isinstance(paths["features.0"], nn.Conv2d) and isinstance(paths["features.1"], nn.BatchNorm2d)
    assert isinstance(paths["features.2"], nn.ReLU) and "head.0" in paths
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64]
    assert {c.stride for c in convs} == ({(2, 2)} if model.downsampling == "strided" else {(1, 1)})
    pools = {"strided": None, "maxpool": nn.MaxPool2d, "blurstrided": BlurPool2d,
             "maxblur": MaxBlurPool2d, "aps": MaxAPSPool2d, "allconv": nn.Sequential, "avgpool": nn.AvgPool2d,
             "learned": LearnedPool2d, "learnedblur": LearnedPool2d}[model.downsampling]
    stage_ends = [type(m) for m in model.features if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU))]
    assert stage_ends == ([] if pools is None else [pools] * 3)
    head_types = {"fc": [nn.Flatten, nn.Linear], "gap": [nn.Conv2d, nn.AdaptiveAvgPool2d, nn.Flatten],
                  "gmp": [nn.Conv2d, nn.AdaptiveMaxPool2d, nn.Flatten]}[model.head_kind]
    assert [type(m) for m in model.head] == head_types
    assert (model.input_size is not None) == (model.head_kind == "fc")
    assert model.require_divisible == (model.downsampling == "aps")


def test_blurstrided_stage_is_conv_bn_relu_blurpool() -> None:
    model = build("blurstrided_gap")
    assert [type(m) for m in model.features[:4]] == [Conv2d, nn.BatchNorm2d, nn.ReLU, BlurPool2d]
    blurs = layers_of(model, BlurPool2d)
    assert [(b.channels, b.stride, b.filt_size, b.pad_type) for b in blurs] == [
        (16, 2, 4, "reflect"), (32, 2, 4, "reflect"), (64, 2, 4, "reflect")]


@pytest.mark.parametrize("name", POOL_HEADS)
def test_pool_heads_take_other_sizes(name: str) -> None:
    model = build(name, in_channels=3, num_classes=5)
    seen = {}
    model.features.register_forward_hook(lambda m, a, out: seen.update(shape=out.shape))
    assert model(torch.randn(1, 3, 48, 24)).shape == (1, 5)
    assert seen["shape"][-2:] == (6, 3)


def test_allconv_stage_replaces_the_pool_by_a_stride_2_conv() -> None:
    model = build("allconv_gap")
    stage = model.features[3]
    assert [type(m) for m in stage] == [Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert (stage[0].in_channels, stage[0].out_channels, stage[0].kernel_size, stage[0].stride) == (16, 16, (3, 3), (2, 2))
    assert build("allconv_fc", padding_mode="circular").features[3][0].padding_mode == "circular"


def test_learned_pools_have_the_blur_support_and_their_init() -> None:
    random, binomial = build("learned_gap", seed=0), build("learnedblur_gap", seed=0)
    for model, init in ((random, "random"), (binomial, "binomial")):
        pools = layers_of(model, LearnedPool2d)
        assert [(p.channels, p.stride, p.filt_size, p.pad_type, p.init) for p in pools] == [
            (16, 2, 4, "reflect", init), (32, 2, 4, "reflect", init), (64, 2, 4, "reflect", init)]
    # the binomial twin starts as blurstrided_gap exactly (same seed, same convs)
    blur = build("blurstrided_gap", seed=0)
    binomial.load_state_dict({k: v for k, v in blur.state_dict().items()}, strict=False)
    x = torch.randn(2, 1, 32, 32)
    binomial.eval(), blur.eval(), random.eval()
    assert torch.allclose(binomial(x), blur(x), atol=1e-6)
    assert not torch.allclose(random(x), blur(x), atol=1e-3)
    assert layers_of(build("learned_gmp", padding_mode="circular"), LearnedPool2d)[0].pad_type == "circular"


def test_parameter_counts_depend_only_on_the_head() -> None:
    models = {name: build(name) for name in ALL}
    # conv3x3: (1*9+1)*16 + (16*9+1)*32 + (32*9+1)*64, BatchNorm: 2 * (16 + 32 + 64)
    shared = 160 + 4640 + 18496 + 224
    # allconv: one more conv3x3 c -> c with BatchNorm per stage; learned: a 4x4 depthwise filter per channel
    extra = {"allconv": (16 * 9 + 1) * 16 + (32 * 9 + 1) * 32 + (64 * 9 + 1) * 64 + 224,
             "learned": 16 * (16 + 32 + 64), "learnedblur": 16 * (16 + 32 + 64)}
    for model in models.values():
        assert count_parameters(model.features) == shared + extra.get(model.downsampling, 0)
    fc_head, gap_head = 64 * 4 * 4 * 10 + 10, 64 * 10 + 10
    for model in models.values():
        counts = model.parameter_counts()
        assert counts["total"] == counts["features"] + counts["head"] == count_parameters(model)
        assert counts["head"] == (fc_head if model.head_kind == "fc" else gap_head)
    assert count_parameters(build("maxpool_fc", input_size=(40, 24)).head) == 64 * 5 * 3 * 10 + 10
    assert count_parameters(build("aps_fc", hidden=32).head) == 1024 * 32 + 32 + 32 * 10 + 10


def test_count_parameters_trainable_only() -> None:
    model = build("strided_gap")
    model.features.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 650
    assert count_parameters(model) == 23520 + 650  # convs 23,296 + BatchNorm 224


def test_building_an_fc_model_leaves_batchnorm_statistics_untouched() -> None:
    model = build("blurstrided_fc")  # sizing the Linear layer runs the trunk once
    for bn in layers_of(model, nn.BatchNorm2d):
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert int(bn.num_batches_tracked) == 0
    assert model.training


def test_padding_modes_and_blur_padding_follow_the_convs() -> None:
    def modes(model: nn.Module) -> set[str]:
        return {m.padding_mode for m in model.features.modules() if isinstance(m, nn.Conv2d)}

    for name in ALL:
        assert zoo.default_padding_mode(name) == ("circular" if name.startswith("aps_") else "zeros")
        assert modes(build(name)) == {zoo.default_padding_mode(name)}
    assert modes(build("strided_gap", padding_mode="circular")) == {"circular"}
    assert modes(build("aps_gap", padding_mode="zeros")) == {"zeros"}
    for name in ["blurstrided_gap", "maxblur_fc"]:
        assert {b.pad_type for b in layers_of(build(name), BlurPool2d)} == {"reflect"}
        assert {b.pad_type for b in layers_of(build(name, padding_mode="replicate"), BlurPool2d)} == {"reflect"}
        blurs = layers_of(build(name, padding_mode="circular", filt_size=3), BlurPool2d)
        assert {(b.pad_type, b.filt_size) for b in blurs} == {("circular", 3)}
        blurs = layers_of(build(name, padding_mode="circular", pad_type="zeros"), BlurPool2d)
        assert {b.pad_type for b in blurs} == {"zeros"}
    aps = layers_of(build("aps_gmp", norm="inf", filt_size=3), MaxAPSPool2d)
    assert {(p.aps.norm, p.aps.blur.filt_size) for p in aps} == {("inf", 3)}


def test_circular_maxblur_computes_its_dense_max_circularly() -> None:
    """Zhang's unpadded dense max turns 32 into 31 (not periodic); with circular convs it pads circularly."""
    plain = layers_of(build("maxblur_gap"), MaxBlurPool2d)[0]
    assert isinstance(plain.pool, nn.MaxPool2d)
    circ = layers_of(build("maxblur_gap", padding_mode="circular"), MaxBlurPool2d)[0]
    assert isinstance(circ.pool.pad, nn.CircularPad2d) and circ.pool.pad.padding == (0, 1, 0, 1)
    x = torch.randn(1, 16, 32, 32)
    assert plain.pool(x).shape[-1] == 31 and circ.pool(x).shape[-1] == 32
    assert torch.equal(circ.pool(x), F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="circular"), 2, 1))


def test_seed_is_reproducible_and_local() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = build("maxpool_fc", seed=7), build("maxpool_fc", seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    c = build("maxpool_fc", seed=8)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["maxpool_fc", "strided_fc", "blurstrided_fc", "maxblur_fc"])
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


@pytest.mark.parametrize("name", ["aps_fc", "aps_gap", "aps_gmp"])
def test_aps_models_require_divisible_size(name: str) -> None:
    with pytest.raises(ValueError, match="divisible by its total stride 8"):
        build(name, input_size=30)
    with pytest.raises(ValueError, match="divisible by its total stride 8"):
        build(name, input_size=(32, 36))
    model = build(name)
    if name == "aps_fc":  # its Linear layer already pins the size
        assert model.require_divisible and model.input_size == (32, 32)
        return
    with pytest.raises(ValueError, match=r"divisible by its total stride 8 .*got 36x32"):
        model(torch.zeros(1, 1, 36, 32))
    assert model(torch.zeros(1, 1, 40, 16)).shape == (1, 10)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", ALL)
def test_trains_on_real_digits(name: str) -> None:
    x, y = digits(32)
    model = build(name, width=8, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    losses = train_steps(model, x, y, steps=3, lr=0.05)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert 1.5 < losses[0] < 3.5  # near log(10) = 2.30 at init (global max heads start higher)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert all(changed)  # gradients reach every parameter


# --------------------------------------------------------------------------- APS invariance


def test_aps_gap_exactly_invariant_to_every_circular_shift() -> None:
    model = build("aps_gap", seed=1).double()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
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
