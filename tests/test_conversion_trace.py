"""Tests for what convert's traced forward pass finds (issue 12, item 2, "convert fails
silently"): channels measured whatever the registration order, downsampling done outside
modules, APS branches that are merged, and the empirical invariance check."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.conversion import BranchMerge, UnconvertedDownsampling, convert
from shiftlab.nn import circular_pad
from shiftlab.zoo import build


class ResBlock(nn.Module):
    """Residual block downsampling twice: a strided 3x3 conv in the main path, a strided 1x1
    conv on the skip path (ResNet's ``downsample`` shortcut)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.skip(x))


class IssueNet(nn.Module):
    """The issue's model: [N, 1, H, W] -> [N, 10]. ``pool`` is registered after the block and
    the head but runs right after the stem (8 channels; registration order guesses 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.block = ResBlock(8, 32)
        self.head = nn.Conv2d(32, 10, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.stem(x)))
        x = F.max_pool2d(x, 2)  # downsampling outside modules
        return self.head(self.block(x)).mean((2, 3))  # global average pool


def plain_cnn() -> nn.Sequential:
    """Sequential circular-padded CNN with a global pool: [N, 1, H, W] -> [N, 10]."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 10, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def issue_model() -> IssueNet:
    torch.manual_seed(0)
    return IssueNet().double()


FUNCTIONAL_POOL = UnconvertedDownsampling(
    path="", kind="functional", op="max_pool2d", in_size=(16, 16), out_size=(8, 8),
    after="pool", before="block")
RESIDUAL_MERGE = BranchMerge(path="block", op="add",
                             branches=(("block.conv1",), ("block.skip",)), size=(4, 4))


def test_issue_model_converts_without_example_input() -> None:
    model = issue_model()
    with pytest.warns(UserWarning):
        new, report = convert(model, "aps", "circular")
    assert report.trace == "built input (2, 1, 32, 32)"
    pool = next(e for e in report.entries if e.path == "pool")
    assert (pool.channels, pool.channels_from) == (8, "example_input")  # not 10 (head)
    assert pool.old_shape == pool.new_shape == (2, 8, 16, 16)
    x = torch.randn(3, 1, 64, 64, dtype=torch.float64)
    assert new(x).shape == (3, 10)
    # the static guess of before (registration order) is what trace=False still gives
    static, report = convert(model, "aps", "circular", trace=False)  # nothing checked
    assert next(e for e in report.entries if e.path == "pool").channels == 10
    with pytest.raises(ValueError, match="8 channels but the layer was built for channels=10"):
        static(x)


def test_issue_model_findings_are_reported_and_warned() -> None:
    model = issue_model()
    with pytest.warns(UserWarning) as record:  # shared phases would resolve the merge
        _, report = convert(model, "aps", "circular", share_phases=False)
    messages = [str(w.message) for w in record]
    assert report.unconverted == [FUNCTIONAL_POOL]
    assert any("left downsampling as it is" in m and
               "max_pool2d() in <model>.forward, after pool, before block: 16x16 -> 8x8" in m
               for m in messages)
    assert report.merges == [RESIDUAL_MERGE]
    assert any(m.startswith("APS phases not shared across branches") and
               "add() in block.forward at 4x4: block.conv1 | block.skip" in m for m in messages)
    assert len(messages) == 2
    text = str(report)
    assert "downsampling not converted (1):\n  max_pool2d() in <model>.forward" in text
    assert "APS phases not shared across branches (1)" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["unconverted"][0]["op"] == "max_pool2d"
    assert data["merges"] == [{"path": "block", "op": "add", "size": [4, 4],
                               "branches": [["block.conv1"], ["block.skip"]]}]


def test_invariance_check_measures_the_converted_model() -> None:
    """Non-zero for the issue's model (its maps are not shift-consistent), at float64 rounding
    for a plain circular-padded global-pool CNN; both agree with direct computation."""
    with pytest.warns(UserWarning):
        new, report = convert(issue_model(), "aps", "circular")
    assert report.invariance_check is not None and report.invariance_check > 1e-4
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        direct = (new.eval()(torch.roll(x, (1, 1), (-2, -1))) - new(x)).abs().max().item()
    assert direct > 1e-4

    torch.manual_seed(0)
    plain = plain_cnn().double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        new, report = convert(plain, "aps", "circular")
    assert report.unconverted == [] and report.merges == []
    assert report.invariance_check is not None and report.invariance_check < 1e-10
    with torch.no_grad():
        new.eval()
        assert (new(torch.roll(x, (5, 3), (-2, -1))) - new(x)).abs().max() < 1e-10
    # the unconverted model is not invariant, and a map output has nothing to be invariant
    assert convert(plain, None).report.invariance_check > 1e-4
    assert convert(plain[:4], "aps", "circular").report.invariance_check is None


def test_example_input_sets_the_traced_size() -> None:
    x = torch.randn(2, 1, 64, 48, dtype=torch.float64)
    with pytest.warns(UserWarning, match="max_pool2d"), pytest.warns(UserWarning, match="APS"):
        _, report = convert(issue_model(), "aps", "circular", example_input=x, share_phases=False)
    assert report.trace == "example_input (2, 1, 64, 48)"
    assert report.unconverted[0].in_size == (32, 24) and report.unconverted[0].out_size == (16, 12)
    assert report.merges[0].size == (8, 6)


def test_skipped_layers_are_reported_not_warned() -> None:
    with pytest.warns(UserWarning) as record:
        _, report = convert(issue_model(), "aps", "circular", skip=["block.skip"])
    skipped = UnconvertedDownsampling("block.skip", "layer", "Conv2d", (8, 8), (4, 4),
                                      after="block.conv2", before="head", skipped=True)
    assert report.unconverted == [FUNCTIONAL_POOL, skipped]
    assert "block.skip" not in str(record[0].message)  # warned: only the functional pool
    assert report.merges == [RESIDUAL_MERGE]  # the APS main path still meets a fixed one


def test_blur_and_no_downsampling() -> None:
    """BlurPool subsamples every branch at the same fixed phase: no merge to report; with
    downsample=None strided layers are left alone on request: nothing is reported."""
    with pytest.warns(UserWarning, match="max_pool2d") as record:
        _, report = convert(issue_model(), "blur", "circular")
    assert report.unconverted == [FUNCTIONAL_POOL] and report.merges == [] and len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, report = convert(issue_model(), None, "circular")
    assert report.unconverted == [] and report.merges == []


class Branchy(nn.Module):
    """Merges that are shift-consistent (identity residual, dense concatenation, squeeze-and-
    excitation gate, data-dependent branch) and one that is not (U-Net skip connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.res = nn.Conv2d(8, 8, 3, padding=1)
        self.gate = nn.Conv2d(16, 16, 1)
        self.down2 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 16, 2, stride=2)
        self.head = nn.Conv2d(32, 10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.down(x))
        if x.shape[-1] > 4:
            x = x + F.relu(self.res(x))
        x = torch.cat([x, self.res(x)], 1)
        x = x * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True)))
        x = torch.cat([x, self.up(F.relu(self.down2(x)))], 1)
        return F.relu(self.head(x)).amax((2, 3))


def test_only_merges_of_different_aps_branches_are_reported() -> None:
    with pytest.warns(UserWarning, match="APS phases not shared"):
        _, report = convert(Branchy().double(), "aps", "circular")
    assert report.merges == [BranchMerge("", "cat", ((), ("down2",)), (16, 16))]
    assert report.unconverted == []
    assert "cat() in <model>.forward at 16x16: (none) | down2" in str(report)


def test_untraceable_built_input_warns_and_falls_back() -> None:
    fc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(4 * 14 * 14, 10))  # only takes 28 x 28
    with pytest.warns(UserWarning, match=r"could not trace.*in 3.*pass example_input="):
        new, report = convert(fc, "blur")
    assert report.trace.startswith("not traced: the built input fails")
    assert report.entries[0].channels_from == "0" and report.invariance_check is None
    x = torch.randn(1, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, report = convert(fc, "blur", example_input=x)
    assert report.entries[0].channels_from == "example_input"
    assert report.invariance_check is not None and new(x).shape == (1, 10)


@pytest.mark.parametrize("name", ["aps_gap", "aps_gmp"])
def test_shiftlabs_circular_layers_are_not_taken_for_downsampling(name: str) -> None:
    # shiftlab.nn.circular_pad.Conv2d pads with slices (x[..., :1] wraps a column); the trace
    # once reported each as a 32x32 -> 32x1 reduction left unconverted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new, report = convert(build(name, seed=3).double(), "aps", "circular")
    assert report.unconverted == []
    assert report.invariance_check is not None and report.invariance_check < 1e-12


def test_a_strided_shiftlab_circular_conv_converts_like_nn_conv2d() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(circular_pad.Conv2d(1, 4, 3, stride=2, padding=1, padding_mode="circular"),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1)).double()
    new, report = convert(net, "aps", "circular")
    assert [e.path for e in report.entries] == ["0"] and report.unconverted == []
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert (new(torch.roll(x, (3, 5), (-2, -1))) - new(x)).abs().max() < 1e-12
