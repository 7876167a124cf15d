"""Tests of :func:`shiftlab.measure.equivariance`: per-layer records, errors against their definitions, diagnoses."""

from __future__ import annotations

import importlib
import json
import math
import warnings

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure.layer_records import CONSTANT_ULPS, LayerAccumulator, constant_maps

# The module of the per-layer hooks, which make the accumulators (imported by name: some modules of
# ``shiftlab.measure`` share their name with a function the package re-exports).
recorder_module = importlib.import_module("shiftlab.measure.equivariance_recorder")


pytestmark = pytest.mark.usefixtures("one_thread")


def images(n=2, c=1, h=12, w=12, seed=0) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module.double().eval()


class Net(nn.Module):
    """Custom module: ``head`` is registered first but runs last; ``act`` runs twice."""

    def __init__(self, pool: nn.Module | None = None) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
            pool if pool is not None else nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"),
        )
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        y = self.act(self.features(x))
        y = self.act(y - 0.1)
        return self.head(self.pool(y).flatten(1))


# --- layer records ------------------------------------------------------------------------------------


def test_layers_in_execution_order_with_paths_kinds_shapes_and_strides():
    res = sl.equivariance(seeded(Net()), images(), shifts=1)
    assert [(layer.name, layer.kind) for layer in res.layers] == [
        ("features.0", "Conv2d"), ("features.1", "ReLU"), ("features.2", "MaxPool2d"), ("features.3", "Conv2d"),
        ("act", "ReLU"), ("act[1]", "ReLU"), ("pool", "AdaptiveAvgPool2d"),
    ]
    shapes = {layer.name: (layer.shape, layer.stride) for layer in res.layers}
    assert shapes["features.0"] == ((4, 12, 12), (1, 1))
    assert shapes["features.2"] == ((4, 6, 6), (2, 2))
    assert shapes["act[1]"] == ((4, 6, 6), (2, 2))
    assert shapes["pool"] == ((4, 1, 1), (12, 12))
    assert [(s.name, s.kind) for s in res.skipped] == [("head", "Linear")]
    assert res.skipped[0].output.startswith("shape (") and res.skipped[0].output.endswith(", 3)")
    assert res.input_shape == (1, 12, 12) and res.n_images == 2 and len(res.shifts) == 9
    assert res.output_eq_t_db is None  # a classifier: no dense output


def test_module_called_twice_gets_two_records_with_their_own_errors():
    res = sl.equivariance(seeded(Net()), images(), shifts=1)
    a, b = res.layer("act"), res.layer("act[1]")
    assert a.shape == b.shape
    assert a.error_by_shift != b.error_by_shift  # different inputs: separate accumulators
    with pytest.raises(KeyError, match="no measured layer named 'nope'"):
        res.layer("nope")


def test_layer_that_loses_a_border_row_keeps_its_nominal_stride():
    # MaxPool2d(2, stride=1) maps 28 -> 27: a stride-1 layer, exact away from the lost row
    res = sl.equivariance(seeded(Net(pool=nn.MaxPool2d(2, stride=1))), images(h=28, w=28), shifts=1)
    rec = res.layer("features.2")
    assert rec.shape == (4, 27, 27)
    assert rec.stride == (1, 1)
    assert rec.unaligned_error is None
    assert rec.aligned_error > 1e-3  # the wrapped/lost border row differs
    assert rec.aligned_interior_error < 1e-6
    assert rec.diagnose(1e-4) == "boundary"
    json.dumps(res.to_dict(), allow_nan=False)


def test_layer_selection_and_unknown_names():
    model = seeded(Net())
    res = sl.equivariance(model, images(), shifts=1, layers=["features.2", "act"])
    assert [layer.name for layer in res.layers] == ["features.2", "act", "act[1]"]
    full = sl.equivariance(model, images(), shifts=1)
    # selecting does not change the measurement (e.g. the receptive-field border)
    assert res.layer("act").error_by_shift == full.layer("act").error_by_shift
    assert res.layer("act").border == full.layer("act").border
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['features.9', 'nope'\]; the model has: \[.*'features.3'"):
        sl.equivariance(model, images(), shifts=1, layers=["features.9", "features.0", "nope"])


# --- errors against their definitions -------------------------------------------------------------


def test_aligned_and_interior_errors_match_the_definitions():
    conv = seeded(nn.Conv2d(1, 3, 3, padding=1))  # zero padding
    x = images(3)
    shifts = [(0, 0), (1, 0), (-2, 3)]
    res = sl.equivariance(nn.Sequential(conv).eval(), x, shifts=shifts)
    rec = res.layers[0]
    with torch.no_grad():
        y = conv(x)
        manual, interior = [], []
        for dy, dx in shifts:
            diff = conv(sl.shift(x, dy, dx)) - sl.shift(y, dy, dx)
            manual.append(float(diff.norm() / y.norm()))
            h, w = y.shape[-2:]
            b = 1  # receptive-field radius of a 3x3 conv
            rows = [i for i in range(h) if b <= i < h - b and b <= i - dy < h - b]
            cols = [j for j in range(w) if b <= j < w - b and b <= j - dx < w - b]
            d_in = diff[..., rows, :][..., cols]
            t_in = sl.shift(y, dy, dx)[..., rows, :][..., cols]
            interior.append(float(d_in.norm() / t_in.norm()))
    assert rec.border == 1
    assert rec.error_by_shift == pytest.approx(manual, rel=1e-12, abs=1e-15)
    assert rec.interior_error_by_shift == pytest.approx(interior, abs=1e-14)
    assert rec.aligned_error == pytest.approx((manual[1] + manual[2]) / 2, rel=1e-12)  # zero shift excluded
    assert rec.aligned_error_max == pytest.approx(max(manual[1:]), rel=1e-12)


def test_unaligned_error_is_against_the_fractional_shift():
    pool = nn.AvgPool2d(2)
    x = images(2, 2, 12, 12)
    res = sl.equivariance(nn.Sequential(pool).eval(), x, shifts=[(1, 0), (0, 3)])
    y = pool(x)
    manual = [float((pool(sl.shift(x, dy, dx)) - sl.shift(y, dy / 2, dx / 2, mode="fourier")).norm() / y.norm())
              for dy, dx in [(1, 0), (0, 3)]]
    assert res.layers[0].error_by_shift == pytest.approx(manual, rel=1e-10)
    assert res.layers[0].unaligned_error == pytest.approx(sum(manual) / 2, rel=1e-10)


def test_eq_t_of_dense_outputs():
    x = images(2, 1, 10, 10)
    circ = seeded(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                                nn.Conv2d(3, 2, 3, padding=1, padding_mode="circular")))
    res = sl.equivariance(circ, x, shifts=2)
    assert res.output_eq_t_db == math.inf
    assert res.to_dict()["output_eq_t_db"] == "inf"
    zero = seeded(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1)))
    shifts = [(0, 0), (1, 0), (0, -2)]
    res = sl.equivariance(zero, x, shifts=shifts)
    # StyleGAN3's EQ-T by hand: wrapped pixels masked, peak = dynamic range of f(x)
    with torch.no_grad():
        y = zero(x)
        sq, count = 0.0, 0
        for dy, dx in shifts[1:]:
            diff = zero(sl.shift(x, dy, dx)) - sl.shift(y, dy, dx)
            mask = torch.zeros(10, 10, dtype=torch.bool)
            mask[max(dy, 0) : 10 + min(dy, 0), max(dx, 0) : 10 + min(dx, 0)] = True
            sq += float(diff.square()[..., mask].sum())
            count += int(mask.sum()) * y.shape[0] * y.shape[1]
    want = 10 * math.log10(float(y.max() - y.min()) ** 2 / (sq / count))
    assert math.isfinite(res.output_eq_t_db)
    assert res.output_eq_t_db == pytest.approx(want, rel=1e-9)


def constant_conv(value: float) -> nn.Module:
    """A dense model whose output is ``value`` everywhere, whatever the image: a convolution with
    zero weights and bias ``value``."""
    conv = nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(value)
    return nn.Sequential(conv).double().eval()


@pytest.mark.parametrize("mode", ["circular", "zeros"])
@pytest.mark.parametrize("value", [0.0, 0.25])
def test_a_constant_dense_output_gets_the_caution_and_no_eq_t(mode, value):
    """The shifted outputs equal the reference exactly (MSE 0), which used to read as EQ-T = inf."""
    res = sl.equivariance(constant_conv(value), images(3), shifts=2, mode=mode)
    assert math.isnan(res.output_eq_t_db)
    assert res.output_constant_share == 1.0
    assert res.degenerate is not None and res.degenerate.startswith("all 6 output maps (one per image and channel) "
                                                                   "are constant, so EQ-T is undefined")
    assert res.output_eq_t_text() == "undefined (constant output)"
    back = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert back["output_eq_t_db"] == "nan" and back["output_constant_share"] == 1.0
    assert back["degenerate"] == res.degenerate


def test_a_mostly_constant_dense_output_gets_the_caution_with_its_share():
    """10 blank images (a convolution without bias keeps them 0) and 1 textured one: 20 of 22 maps
    constant, at or above the 0.9 of ``DEGENERATE_CONSTANT_SHARE``; EQ-T stays a number."""
    model = seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False)))
    x = torch.cat([torch.zeros(10, 1, 12, 12, dtype=torch.float64), images(1)])
    res = sl.equivariance(model, x, shifts=[(0, 0), (1, 0), (0, -2)], mode="zeros", batch_size=9)
    assert res.output_constant_share == 20 / 22
    assert res.degenerate is not None and res.degenerate.startswith("91% of the 22 output maps")
    assert math.isfinite(res.output_eq_t_db)
    assert res.output_eq_t_text() == f"{res.output_eq_t_db:.2f} dB"
    textured = sl.equivariance(model, x[10:], shifts=[(0, 0), (1, 0), (0, -2)], mode="zeros")
    assert textured.degenerate is None and textured.output_constant_share == 0.0
    # the blank maps add no error, so the EQ-T of all 11 images is that of the textured one plus 10 log10(11)
    assert res.output_eq_t_db == pytest.approx(textured.output_eq_t_db + 10 * math.log10(11), rel=1e-12)


def test_a_varying_dense_output_gets_no_caution():
    circ = seeded(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                                nn.Conv2d(3, 2, 3, padding=1, padding_mode="circular")))
    res = sl.equivariance(circ, images(2, 1, 10, 10), shifts=2)
    assert res.output_eq_t_db == math.inf and res.output_eq_t_text() == "inf dB (exactly equivariant)"
    assert res.output_constant_share == 0.0 and res.degenerate is None
    classifier = sl.equivariance(seeded(Net()), images(), shifts=1)
    assert classifier.output_constant_share is None and classifier.degenerate is None


def test_constant_maps_are_equal_to_rounding():
    """Within ``CONSTANT_ULPS`` units of rounding of the model's dtype, relative to the map's magnitude."""
    base = torch.full((1, 1, 4, 4), 3.0)
    eps = torch.finfo(torch.float32).eps
    nudged = base.clone()
    nudged[..., 0, 0] += 3.0 * eps * CONSTANT_ULPS / 2
    moved = base.clone()
    moved[..., 0, 0] += 3.0 * eps * CONSTANT_ULPS * 4
    maps = torch.cat([base, nudged, moved, torch.zeros(1, 1, 4, 4)], dim=1)
    assert constant_maps(maps, torch.float32).tolist() == [[True, True, False, True]]
    assert constant_maps(maps.double(), torch.float64).tolist() == [[True, False, False, True]]


# --- diagnoses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, want",
    [
        (lambda: nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular"), "equivariant"),
        (lambda: nn.Conv2d(1, 3, 3, padding=1), "boundary"),
        (lambda: nn.Conv2d(1, 3, 3, stride=2, padding=1, padding_mode="circular"), "aliasing"),
        (lambda: nn.Conv2d(1, 3, 3, stride=2, padding=1), "boundary+aliasing"),
    ],
    ids=["equivariant", "boundary", "aliasing", "boundary+aliasing"],
)
def test_diagnose(layer, want):
    res = sl.equivariance(seeded(nn.Sequential(layer())), images(), shifts=2)
    assert res.layers[0].diagnose() == want
    assert res.to_dict()["layers"][0]["diagnosis"] == want
    if want == "equivariant":
        assert res.first_break(1e-12) is None
    else:
        assert res.first_break(1e-6).name == "0"


def test_first_break_interior_ignores_boundary_effects():
    model = seeded(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1), nn.MaxPool2d(2)))
    res = sl.equivariance(model, images(), shifts=2)
    assert res.first_break(1e-9).name == "0"  # zero padding: boundary effect at once
    assert res.first_break(1e-9, interior=True).name == "3"  # the interior survives until the pool aliases


# --- where equivariance breaks: origins and resolution jumps -----------------------------------------


def circular_stack() -> nn.Module:
    return seeded(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
    ))


def test_errors_after_the_first_break_are_inherited_not_caused():
    res = sl.equivariance(circular_stack(), images(4, h=16, w=16), shifts=1)
    assert res.origins(1e-9) == ["equivariant", "equivariant", "breaks here: aliasing", "inherited", "inherited",
                                 "inherited", "inherited"]
    # diagnose() keeps its meaning: it describes the error a layer carries, wherever it was made
    assert [layer.diagnose(1e-9) for layer in res.layers][2:6] == ["aliasing"] * 4
    assert res.first_break(1e-9).name == "2"
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert [layer["origin"] for layer in d["layers"]] == res.origins()
    assert [layer["diagnosis"] for layer in d["layers"]][2:6] == ["aliasing"] * 4


def test_a_layer_that_adds_error_breaks_again():
    # zero padding: the first conv breaks by its border; the ReLU after it carries that error; a
    # second subsampling makes new (aliasing) error at the shifts the first one still matched
    model = seeded(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 1),
                                 nn.MaxPool2d(2)))
    res = sl.equivariance(model, images(4, h=16, w=16), shifts=2)
    origins = res.origins(1e-9)
    assert origins[0] == "breaks here: boundary" and origins[1] == "inherited"
    assert origins[2].startswith("breaks here") and "aliasing" in origins[2]
    assert origins[3] == "inherited"  # a 1x1 conv adds nothing
    assert origins[4] == "breaks here: aliasing"  # stride 4: shifts by 2 were aligned at stride 2, not here


def test_origin_factor_and_tolerance():
    res = sl.equivariance(circular_stack(), images(4, h=16, w=16), shifts=1)
    # at half the error before it, a layer counts as adding error; the global pool averages it away
    assert res.origins(1e-9, factor=0.5)[3:] == ["breaks here: aliasing"] * 3 + ["inherited"]
    assert res.layers[6].worst() < 0.5 * res.layers[5].worst()
    assert res.origins(1e-9, factor=math.inf)[2:] == ["breaks here: aliasing"] + ["inherited"] * 4
    assert set(res.origins(10.0)) == {"equivariant"}


class FunctionalPool(nn.Module):
    """Downsamples with ``F.max_pool2d`` in ``forward``: no module explains the stride of ``b``."""

    def __init__(self, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.a = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
        self.b = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")

    def forward(self, x):
        if self.first:
            return self.b(self.a(torch.nn.functional.avg_pool2d(x, 2)))
        return self.b(torch.nn.functional.max_pool2d(self.a(x), 2))


class Residual(nn.Module):
    """A strided block with a strided shortcut on the block's input: a branch, not a functional op."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1, padding_mode="circular")
        self.down = nn.Conv2d(1, 4, 1, stride=2)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x) + self.down(x))


def test_resolution_jumps_outside_modules():
    res = sl.equivariance(seeded(FunctionalPool()), images(2, h=16, w=16), shifts=1)
    assert [(layer.name, layer.input_stride, layer.resized_outside_modules) for layer in res.layers] == [
        ("a", (1, 1), False), ("b", (2, 2), True)]
    [jump] = res.resolution_jumps()
    assert (jump.previous, jump.layer, jump.before, jump.after) == ("a", "b", (1, 1), (2, 2))
    assert jump.describe() == ("stride jumps from 1 to 2 between a and b: downsampling outside modules "
                               "(functional op in forward?)")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["resolution_jumps"] == [{"previous": "a", "layer": "b", "before": [1, 1], "after": [2, 2]}]
    assert d["layers"][1]["input_stride"] == [2, 2]

    first = sl.equivariance(seeded(FunctionalPool(first=True)), images(2, h=16, w=16), shifts=1)
    assert [(j.previous, j.layer, j.after) for j in first.resolution_jumps()] == [("(input)", "a", (2, 2))]


def test_branches_and_modules_explain_their_strides():
    for model in (Residual(), circular_stack(), Net()):
        res = sl.equivariance(seeded(model), images(2, h=16, w=16), shifts=1)
        assert res.resolution_jumps() == [], type(model).__name__
    res = sl.equivariance(seeded(Residual()), images(2, h=16, w=16), shifts=1)
    assert res.layer("down").input_stride == (1, 1) and res.layer("relu").input_stride == (2, 2)


def test_fractional_shift_sets_are_all_unaligned():
    # odd size: a circular conv commutes exactly with the band-limited shift; ReLU does not
    model = seeded(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular"), nn.ReLU()))
    frac = [(0.5, 0.0), (0.0, -1.5), (0.25, 0.75)]
    res = sl.equivariance(model, images(2, 1, 11, 11), shifts=frac)
    for rec in res.layers:
        assert rec.aligned_error is None and rec.aligned_interior_error is None
        assert len(rec.error_by_shift) == 3
    assert res.layers[0].unaligned_error < 1e-12
    assert res.layers[1].unaligned_error > 1e-3
    assert res.shifts == [(0.5, 0.0), (0.0, -1.5), (0.25, 0.75)]
    random = sl.ShiftSet.random(5, 2.0, seed=3, fractional=True)
    res = sl.equivariance(model, images(2, 1, 11, 11), shifts=random)
    assert res.layers[0].unaligned_error_max < 1e-12 and res.shift_set == random.label


# --- bookkeeping: batching, memory, JSON, model state ------------------------------------------------


def test_batch_size_does_not_change_results():
    model, x = seeded(Net()), images(5)
    ref = sl.equivariance(model, x, shifts=1, batch_size=256)
    for bs in (1, 3, 10):
        res = sl.equivariance(model, x, shifts=1, batch_size=bs)
        for a, b in zip(res.layers, ref.layers, strict=True):
            assert a.name == b.name
            assert a.error_by_shift == pytest.approx(b.error_by_shift, rel=1e-10, abs=1e-14), (bs, a.name)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        sl.equivariance(model, x, shifts=1, batch_size=0)


def test_accumulators_hold_per_shift_sums_not_activations(monkeypatch):
    made: list[LayerAccumulator] = []

    class Recording(LayerAccumulator):
        def __post_init__(self) -> None:
            super().__post_init__()
            made.append(self)

    monkeypatch.setattr(recorder_module, "LayerAccumulator", Recording)
    model = seeded(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1)))
    shifts = [(0, 0), (1, 0), (2, 2)]

    def tensor_sizes(n_images):
        made.clear()
        sl.equivariance(model, images(n_images, 1, 12, 12), shifts=shifts, batch_size=8)
        assert len(made) == 5  # four layers and the dense output (for EQ-T)
        sizes = []
        for acc in made:
            tensors = {k: v for k, v in vars(acc).items() if isinstance(v, torch.Tensor)}
            h, w = acc.shape[1:]
            for name, t in tensors.items():
                # per-shift sums ([S]), the offsets ([S, 2]) and the interior mask ([S, H_l, W_l], bool)
                assert t.numel() <= len(shifts) * max(2, h * w), (acc.name, name, tuple(t.shape))
            for name in ("sq_err", "sq_ref", "sq_err_in", "sq_ref_in", "n_in"):
                assert tensors[name].shape == (len(shifts),)
            sizes.append(sorted((k, tuple(v.shape)) for k, v in tensors.items()))
        return sizes

    assert tensor_sizes(2) == tensor_sizes(9)  # memory does not grow with the number of images


def test_to_dict_is_json_serialisable():
    res = sl.equivariance(seeded(Net()), images(), shifts=1)
    d = res.to_dict()
    back = json.loads(json.dumps(d, allow_nan=False))
    assert [layer["name"] for layer in back["layers"]] == [layer.name for layer in res.layers]
    assert back["layers"][2]["stride"] == [2, 2] and back["layers"][2]["diagnosis"] == "aliasing"
    assert back["skipped"][0]["name"] == "head"
    assert back["input_shape"] == [1, 12, 12]


def snapshot(model):
    return (
        {n: m.training for n, m in model.named_modules()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        {n: t.detach().clone() for n, t in model.state_dict().items()},
    )


class NaNLayer(nn.Module):
    def forward(self, x):
        return x + math.nan


@pytest.mark.parametrize("where", ["nan-layer", "bad-name", "too-large-shift"])
def test_model_unchanged_after_a_call_that_raises(where):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.3), nn.ReLU())
    with torch.no_grad():
        model(torch.randn(4, 1, 8, 8) + 2)  # non-trivial BN statistics
    if where == "nan-layer":
        model.append(NaNLayer())
    model[0].bias.requires_grad_(False)
    model.train()
    before = snapshot(model)
    kwargs = {"layers": ["9"]} if where == "bad-name" else {"shifts": 8 if where == "too-large-shift" else 1}
    match = {"nan-layer": "layer '4' produced NaN or Inf", "bad-name": "unknown layer", "too-large-shift": "too large"}[where]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=match):
            sl.equivariance(model, images(2, 1, 8, 8).float(), **kwargs)
    after = snapshot(model)
    assert after[0] == before[0] and after[1] == before[1]
    assert all(torch.equal(after[2][k], v) for k, v in before[2].items())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_training_model_warns_and_is_measured_in_eval_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.BatchNorm2d(4), nn.Dropout(0.5)).double()
    with pytest.warns(UserWarning, match="training mode"):
        res = sl.equivariance(model, images(), shifts=1)
    assert model.training and all(m.training for m in model.modules())
    # in eval mode Dropout is the identity and BN affine per channel: every layer stays exactly equivariant
    assert all(layer.worst() < 1e-12 for layer in res.layers)


def test_crop_mode_uses_the_window_size():
    model = seeded(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2)))
    res = sl.equivariance(model, images(2, 1, 14, 14), shifts=1, mode="crop", crop_size=(8, 8))
    assert res.input_shape == (1, 8, 8)
    assert [layer.shape for layer in res.layers] == [(2, 8, 8), (2, 4, 4)]
    assert res.layers[0].aligned_interior_error < 1e-12  # a crop is a zero-filled shift inside the window
    with pytest.raises(ValueError, match="needs crop_size"):
        sl.equivariance(model, images(2, 1, 14, 14), shifts=1, mode="crop")


def test_a_bare_layer_is_measured_itself():
    conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular").double()
    res = sl.equivariance(conv.eval(), torch.randn(2, 1, 8, 8, dtype=torch.float64), shifts=1)
    assert [layer.name for layer in res.layers] == ["Conv2d"]
    assert res.layers[0].aligned_error_max < 1e-12


def test_infinite_errors_are_json_safe():
    # a layer whose reference output is all zero but whose shifted output is not: relative error inf
    class ZeroUnlessShifted(nn.Module):
        def forward(self, x):
            n = x.shape[0] // 2  # reference copies come first in the batch
            out = x.clone()
            out[:n] = 0
            return out

    net = nn.Sequential(ZeroUnlessShifted()).eval()
    res = sl.equivariance(net, torch.rand(1, 1, 6, 6, dtype=torch.float64), shifts=[(0, 0), (1, 0)], batch_size=2)
    assert math.isinf(res.layers[0].error_by_shift[1])
    payload = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert payload["layers"][0]["error_by_shift"][1] == "inf"


def test_strides_multiply_along_the_network_where_sizes_round():
    """28 -> 14 -> 7 -> 3 (floor pools) is total stride 8, not round(28 / 3) = 9; 28 -> 14 -> 7
    -> 4 (ceil pools) is 8, not 7: shifts by 8 are aligned at the last layer in both."""
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    for ceil in (False, True):
        net = nn.Sequential(*[nn.MaxPool2d(2, ceil_mode=ceil) for _ in range(3)]).double().eval()
        res = sl.equivariance(net, x, shifts=[(0, 0), (0, 8), (8, 0), (0, 1)])
        assert [layer.stride for layer in res.layers] == [(2, 2), (4, 4), (8, 8)]
        last = res.layers[-1]
        assert last.aligned_error is not None and last.aligned_error > 1e-3  # the lost / added border row
    even = nn.Sequential(*[nn.MaxPool2d(2) for _ in range(3)]).double().eval()
    res = sl.equivariance(even, torch.randn(2, 1, 32, 32, dtype=torch.float64), shifts=[(0, 0), (0, 8), (8, 0)], mode="circular")
    assert res.layers[-1].stride == (8, 8) and res.layers[-1].aligned_error < 1e-12
