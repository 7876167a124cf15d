"""APS with shared phases across branches (issue 22, item 3): ``convert(..., "aps", "circular")``
ties the shortcut's APS layer of every ResNet downsampling block to the main branch's, so the
converted ResNet-18 and ResNet-50 are exactly invariant to every circular shift (consistency 1.0,
certified and naive agreeing, float64, random weights); with ``share_phases=False`` they are not.
Merges that one choice cannot serve are still reported and warned about."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import shiftlab as sl
from shiftlab.conversion import BranchMerge, SharedPhases, convert
from shiftlab.measure.shiftsets import ShiftSet
from shiftlab.models import resnet18, resnet50
from shiftlab.models.resnet import BasicBlock
from shiftlab.nn import APSPool2d

pytestmark = pytest.mark.usefixtures("one_thread")


def converted(model: nn.Module, share: bool = True) -> nn.Module:
    """``model`` in float64, converted to APS with circular padding, in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unshared conversion warns about its merges
        return convert(model.double(), "aps", "circular", share_phases=share).model.eval()


def images(n: int, size: int, channels: int = 3) -> Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, channels, size, size, dtype=torch.float64, generator=gen)


def every_shift(model: nn.Module, x: Tensor, certify: bool) -> sl.InvarianceResult:
    """The invariance of ``model`` over every circular shift of ``x [N, C, H, W]``."""
    h, w = x.shape[-2:]
    return sl.invariance(model, x, shifts=ShiftSet.full(h, w), certify=certify, keep_predictions=True)


def narrow_resnet18(width: int = 8, num_classes: int = 1000) -> nn.Sequential:
    """ResNet-18 (torchvision's stem, ``[2, 2, 2, 2]`` BasicBlocks with strided 1x1 shortcuts,
    global average pool, ``fc``) with ``width`` stem channels instead of 64: ``[N, 3, H, W] ->
    [N, num_classes]``, total stride 32. Small enough to run every shift of 64x64 inputs. The
    ``fc`` bias is zero: at random weights the logits are nearly flat, and a bias would pick the
    top-1 class by itself, whatever the phases."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                               nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = width
    for stage in range(4):
        cout, stride = width * 2 ** stage, 1 if stage == 0 else 2
        skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride > 1 else None)
        layers += [BasicBlock(cin, cout, stride, skip), BasicBlock(cout, cout)]
        cin = cout
    fc = nn.Linear(cin, num_classes)
    nn.init.zeros_(fc.bias)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


# --------------------------------------------------------------------------- the report


def test_resnet18_downsampling_blocks_share_the_main_branch_phase() -> None:
    torch.manual_seed(0)
    model = resnet18(num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every merge is shared: nothing to warn about
        new, report = convert(model, "aps", "circular")
    assert report.merges == [] and report.options["share_phases"] is True
    assert [(s.merge.path, s.merge.op, s.merge.size, s.leader, s.followers) for s in report.shared_phases] == [
        (f"layer{i}.0", "add_", size, f"layer{i}.0.conv1.pool", (f"layer{i}.0.downsample.0.pool",))
        for i, size in ((2, (4, 4)), (3, (2, 2)), (4, (1, 1)))]  # layer4 reaches 1x1 on 32x32
    for i in (2, 3, 4):
        block = getattr(new, f"layer{i}")[0]
        assert block.downsample[0].pool.leader is block.conv1.pool and block.conv1.pool.leader is None
    assert new.maxpool.aps.leader is None  # the stem's max-pool is in no merge: its own choice
    assert "APS phases shared across branches (3):\n  add_() in layer2.0.forward at 4x4: layer2.0.conv1 | " \
           "layer2.0.downsample.0: layer2.0.downsample.0.pool follows layer2.0.conv1.pool" in str(report)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["shared_phases"][0] == {
        "merge": {"path": "layer2.0", "op": "add_", "size": [4, 4],
                  "branches": [["layer2.0.conv1"], ["layer2.0.downsample.0"]]},
        "leader": "layer2.0.conv1.pool", "followers": ["layer2.0.downsample.0.pool"]}
    assert report.invariance_check == 0.0


def test_share_phases_false_leaves_the_merges_reported_and_warned() -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"APS phases not shared.*add_\(\) in layer2\.0\.forward at 4x4: "
                                         r"layer2\.0\.conv1 \| layer2\.0\.downsample\.0"):
        new, report = convert(resnet18(num_classes=10), "aps", "circular", share_phases=False)
    assert report.shared_phases == [] and [m.path for m in report.merges] == ["layer2.0", "layer3.0"]
    assert not any(isinstance(m, APSPool2d) and m.leader is not None for m in new.modules())
    assert report.invariance_check > 1e-3


def test_ties_survive_deep_copy_and_leave_the_state_dict_alone() -> None:
    torch.manual_seed(0)
    model = resnet18(num_classes=10)
    shared, plain = converted(model), converted(model, share=False)
    assert list(shared.state_dict()) == list(plain.state_dict())
    twin = copy.deepcopy(shared)
    assert twin.layer2[0].downsample[0].pool.leader is twin.layer2[0].conv1.pool
    plain.load_state_dict(twin.state_dict())
    x = images(2, 32)
    with torch.no_grad():
        assert torch.equal(twin(x), shared(x))
        assert not torch.equal(plain(x), shared(x))  # the same weights, the shortcut's own phase


def test_converted_resnet_trains() -> None:
    model = converted(narrow_resnet18(width=4)).train()
    x = images(3, 32).requires_grad_()
    model(x).square().sum().backward()
    assert x.grad is not None and model[6].downsample[0].conv.weight.grad is not None


# --------------------------------------------------------------------------- exact invariance


@pytest.mark.parametrize("factory", [resnet18, resnet50])
def test_aps_resnet_is_exactly_invariant_to_every_circular_shift_of_32x32(factory) -> None:
    torch.manual_seed(0)
    model = converted(factory())
    cert = every_shift(model, images(1, 32), certify=True)
    assert cert.method == "certified" and cert.certificate.holds
    assert cert.consistency == 1.0 and cert.top1_prob_change < 1e-12
    if factory is resnet18:  # the naive run of all 1,024 shifts agrees
        naive = every_shift(model, images(1, 32), certify=False)
        assert naive.method == "exact" and naive.consistency == 1.0
        assert torch.equal(naive.predictions, cert.predictions)


def test_without_shared_phases_resnet18_is_not_invariant() -> None:
    torch.manual_seed(0)
    result = every_shift(converted(resnet18(), share=False), images(2, 32), certify=True)
    assert result.certificate.holds and result.consistency < 0.9


def test_narrow_resnet18_is_exactly_invariant_to_every_circular_shift_of_64x64() -> None:
    x = images(1, 64)
    shared = converted(narrow_resnet18())
    cert, naive = every_shift(shared, x, certify=True), every_shift(shared, x, certify=False)
    assert cert.method == "certified" and cert.certificate.stride == (32, 32)
    assert cert.consistency == naive.consistency == 1.0
    assert torch.equal(naive.predictions, cert.predictions)
    unshared = every_shift(converted(narrow_resnet18(), share=False), x, certify=True)
    assert unshared.consistency < 0.9


# --------------------------------------------------------------------------- which merges


class TwoMerges(nn.Module):
    """A downsampling residual block whose shortcut is merged twice (``add``, then ``cat``), then a
    U-Net-like merge of a map with its downsampled-and-upsampled copy: ``[N, 2, 16, 16] -> [N, 4]``."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(2, 4, 1, stride=2)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        main = F.relu(self.main(x))
        short = self.skip(x)
        y = torch.cat([main + short, short], 1)
        y = torch.cat([y, self.up(F.relu(self.down(y)))], 1)
        return self.head(y).mean((2, 3))


def test_a_second_merge_is_shared_by_the_first_tie_and_a_unet_merge_is_not() -> None:
    with pytest.warns(UserWarning, match=r"APS phases not shared") as record:
        new, report = convert(TwoMerges().double(), "aps", "circular")
    assert len(record) == 1 and "cat() in <model>.forward at 16x16: (none) | down" in str(record[0].message)
    assert report.shared_phases == [
        SharedPhases(BranchMerge("", "add", (("main",), ("skip",)), (16, 16)), "main.pool", ("skip.pool",)),
        SharedPhases(BranchMerge("", "cat", (("main",), ()), (16, 16)), None)]
    assert report.merges == [BranchMerge("", "cat", ((), ("down",)), (16, 16))]
    assert "cat() in <model>.forward at 16x16: main | (none): shared by the ties above" in str(report)
    assert new.main.pool.leader is None and new.skip.pool.leader is new.main.pool
    with torch.no_grad():
        assert new.eval()(images(2, 16, channels=2)).shape == (2, 4)


class SkipRuns(nn.Module):
    """A shortcut computed before the main branch: ``[N, 2, 16, 16] -> [N, 4]``."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.AvgPool2d(2)
        self.main = nn.Sequential(nn.Conv2d(2, 2, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Conv2d(2, 4, 1)

    def forward(self, x: Tensor) -> Tensor:
        short = self.skip(x)
        return self.head(self.main(x) + short).mean((2, 3))


def test_the_layer_that_runs_first_leads() -> None:
    torch.manual_seed(0)
    new, report = convert(SkipRuns().double(), "aps", "circular")
    assert [(s.leader, s.followers) for s in report.shared_phases] == [("skip.aps", ("main.0.pool",))]
    x = images(1, 16, channels=2)
    batch = torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(16) for dx in range(16)])
    with torch.no_grad():
        out = new.eval()(batch)
    assert (out - out[:1]).abs().max() < 1e-12


class TwiceDown(nn.Module):
    """A main branch that downsamples twice beside a shortcut that downsamples once by 4."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(2, 4, 1, stride=4)

    def forward(self, x: Tensor) -> Tensor:
        return (self.b(F.relu(self.a(x))) + self.skip(x)).mean((2, 3))


def test_branches_that_downsample_differently_are_not_shared() -> None:
    with pytest.warns(UserWarning, match=r"add\(\) in <model>\.forward at 8x8: a, b \| skip"):
        _, report = convert(TwiceDown().double(), "aps", "circular")
    assert report.shared_phases == [] and len(report.merges) == 1


class Tied(nn.Module):
    """APS layers tied by the model's author: ``[N, 2, 8, 8] -> [N, 6]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1, padding_mode="circular")
        self.pool = APSPool2d(6)
        self.skip = nn.Conv2d(2, 6, 1)
        self.skip_pool = APSPool2d(6).follow(self.pool)

    def forward(self, x: Tensor) -> Tensor:
        return (self.pool(self.conv(x)) + self.skip_pool(self.skip(x))).mean((2, 3))


def test_ties_already_in_the_model_count_also_without_share_phases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, report = convert(Tied(), "aps", "circular", share_phases=False)
    assert report.merges == [] and [s.leader for s in report.shared_phases] == [None]
    assert new.skip_pool.leader is new.pool


# --------------------------------------------------------------------------- the zoo


@pytest.mark.parametrize("name", ["strided_gap", "strided_gmp", "maxpool_gap", "allconv_gap", "avgpool_gmp"])
def test_zoo_models_converted_to_aps_stay_exactly_invariant(name: str) -> None:
    model = sl.zoo.build(name, num_classes=10, width=4, input_size=16, seed=2)
    new, report = convert(model.double(), "aps", "circular")
    assert report.merges == [] and report.shared_phases == [] and report.unconverted == []
    x = images(1, 16, channels=1)
    batch = torch.cat([torch.roll(x, (dy, dx), (-2, -1)) for dy in range(16) for dx in range(16)])
    with torch.no_grad():
        out = new.eval()(batch)
    assert (out - out[:1]).abs().max() < 1e-12


class Three(nn.Module):
    """A residual sum beside the shortcut and a third downsampling branch, concatenated:
    ``[N, 2, H, W] -> [N, 12]``."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(2, 4, 1, stride=2)
        self.other = nn.Conv2d(2, 4, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        main = F.relu(self.main(x))
        short = self.skip(x)
        return torch.cat([main + short, short, self.other(x)], 1).mean((2, 3))


def test_a_third_branch_is_tied_to_the_leader_of_the_first_two() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, report = convert(Three().double(), "aps", "circular")
    assert [(s.leader, s.followers) for s in report.shared_phases] == [
        ("main.pool", ("skip.pool",)), ("main.pool", ("other.pool",))]  # not main.pool twice
    assert new.other.pool.leader is new.main.pool and report.invariance_check < 1e-12
