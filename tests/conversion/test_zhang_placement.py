"""Tests for ``convert(..., "blur")``'s default ``placement="zhang"``: the BlurPool after a strided
conv's norm and activation (in front of the next conv where ResNet's one ``relu`` runs twice),
``BlurPool`` before a strided 1x1 skip, ``MaxPool2d(s, 1)`` for a padded max pool, the stem kept
strided; equality with the reference package ``antialiased_cnns`` after loading its state dict;
the fallbacks and their notes; exact equivariance with circular padding for both placements."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftlab import models
from shiftlab.conversion import PLACEMENTS, antialiased_key_map, convert, load_antialiased_state_dict
from shiftlab.models import randomise_norms
from shiftlab.nn import BlurPool2d, MaxBlurPool2d


def reference() -> types.ModuleType:
    return pytest.importorskip("antialiased_cnns", reason="the reference package antialiased-cnns "
                               "is not installed (pip install antialiased-cnns)")


class Block(nn.Module):
    """torchvision's BasicBlock: one ``relu`` module runs twice; a strided 1x1 skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False),
                                        nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + self.downsample(x))


class Tiny(nn.Module):
    """A ResNet in miniature (total stride 16): stem conv, padded max pool, two blocks, GAP."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = Block(8, 16)
        self.layer2 = Block(16, 16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(x.mean((2, 3)))


def tiny() -> Tiny:
    torch.manual_seed(0)
    return randomise_norms(Tiny()).eval()


# --------------------------------------------------------------------------- the reference


CASES: list[tuple[str, Callable[..., nn.Module], dict[str, object], dict[str, object]]] = [
    ("resnet18", models.resnet18, {}, {}),
    ("resnet18", models.resnet18, {"pool_only": False}, {"blur_stem": True}),
    ("resnet50", models.resnet50, {}, {}),
    ("mobilenet_v2", models.mobilenet_v2, {}, {}),
    ("vgg16_bn", models.vgg16_bn, {"init_weights": False}, {"skip": ["avgpool"]}),
]


@pytest.mark.parametrize(("name", "ours", "ref_kwargs", "options"), CASES,
                         ids=[f"{c[0]}{'-blur_stem' if c[3].get('blur_stem') else ''}"
                              for c in CASES])
def test_equals_antialiased_cnns(name: str, ours: Callable[..., nn.Module],
                                 ref_kwargs: dict[str, object], options: dict[str, object]) -> None:
    """The default conversion of our torchvision-keyed model, with the reference's weights loaded
    by the key map, gives the reference's logits (float32, eval mode). VGG's AdaptiveAvgPool2d(7)
    upsamples a 2x2 map at this size: skipped (convert accepts it only where it is the identity)."""
    torch.manual_seed(0)
    ref = randomise_norms(getattr(reference(), name)(filter_size=4, **ref_kwargs)).eval()
    x = torch.randn(2, 3, 64, 64)
    new, report = convert(ours(num_classes=1000).eval(), "blur", example_input=x, **options)
    load_antialiased_state_dict(new, ref.state_dict())
    with torch.no_grad():
        diff = (new(x) - ref(x)).abs().max().item()
    assert diff < 1e-5, diff
    assert not any(e.shape_changed for e in report.entries)
    stem_kept = [n for n in report.notes if "stem conv, kept strided" in n]
    assert len(stem_kept) == (0 if options.get("blur_stem") or name.startswith("vgg") else 1)


def test_key_map_names_and_refusals() -> None:
    aa = reference()
    torch.manual_seed(0)
    ref = aa.resnet18(filter_size=4)
    new, _ = convert(models.resnet18(), "blur", example_input=torch.randn(1, 3, 64, 64))
    mapping = antialiased_key_map(new, {"state_dict": ref.state_dict()})  # a published checkpoint
    assert mapping["layer2.0.downsample.1.weight"] == "layer2.0.downsample.0.1.weight"
    assert mapping["layer2.0.downsample.2.running_var"] == "layer2.0.downsample.1.running_var"
    assert mapping["layer2.0.conv2.1.weight"] == "layer2.0.conv2.1.weight"  # Zhang's own key
    assert "maxpool.1.filt" not in mapping and len(mapping) == len(new.state_dict())
    with pytest.raises(ValueError, match=r"maxpool\.1\.filt .*filter_size"):
        antialiased_key_map(new, aa.resnet18(filter_size=3).state_dict())
    with pytest.raises(ValueError, match="not the same architecture"):
        antialiased_key_map(new, aa.resnet34(filter_size=4).state_dict())


# --------------------------------------------------------------------------- the placement


def test_resnet_block_places_blur_in_front_of_the_next_conv() -> None:
    model, x = tiny(), torch.randn(2, 3, 32, 32)
    new, report = convert(model, "blur", example_input=x)
    assert new.conv1.stride == (2, 2)  # the stem, kept
    assert report.notes == ["conv1: the stem conv, kept strided (Zhang's pool_only; "
                            "blur_stem=True blurs it)"]
    assert isinstance(new.maxpool, MaxBlurPool2d)
    assert new.maxpool.pool.kernel_size == 2 and new.maxpool.pool.padding == 0
    for block in (new.layer1, new.layer2):
        assert type(block.relu) is nn.ReLU  # shared by two paths: not wrapped
        assert type(block.conv1) is nn.Conv2d and block.conv1.stride == (1, 1)
        assert [type(m) for m in block.conv2] == [BlurPool2d, nn.Conv2d]
        skip = block.downsample[0]
        assert [type(m) for m in skip] == [BlurPool2d, nn.Conv2d]
        assert skip[0].channels == skip[1].in_channels and skip[1].stride == (1, 1)
    entries = {e.path: e for e in report.entries}
    assert entries["layer1.conv1"].blur_at == "layer1.conv2.0"
    assert entries["layer1.conv2"].change == "blur"
    assert entries["layer1.conv2"].blur_of == "layer1.conv1"
    assert entries["layer1.downsample.0"].blur_at == "layer1.downsample.0.0"
    assert entries["maxpool"].blur_at == "maxpool.blur"
    assert report.counts() == {"MaxPool2d -> MaxBlurPool2d": 1, "Conv2d -> Conv2d": 2,
                               "Conv2d -> BlurPool2d+Conv2d (holds a blur)": 2,
                               "Conv2d -> BlurPool2d+Conv2d": 2}
    assert all(e.old_shape == e.new_shape is not None for e in report.entries)
    text = str(report)
    assert "(blur at layer1.conv2.0)" in text and "(blur of layer1.conv1)" in text
    assert "stem conv, kept strided" in text
    # Zhang's block by hand: conv stride 1, BN, ReLU, BlurPool, conv; BlurPool, 1x1 conv, BN
    with torch.no_grad():
        b, y = model.layer1, new.maxpool(new.relu(new.bn1(new.conv1(x))))
        main = b.bn2(b.conv2(BlurPool2d(16)(b.relu(b.bn1(F.conv2d(y, b.conv1.weight, padding=1))))))
        skip = b.downsample[1](F.conv2d(BlurPool2d(8)(y), b.downsample[0].weight))
        assert torch.allclose(new.layer1(y), torch.relu(main + skip), atol=1e-6)


def test_unshared_activation_is_wrapped() -> None:
    """The chain BN -> ReLU -> Dropout of a strided conv: the BlurPool after the Dropout."""
    torch.manual_seed(0)
    model = randomise_norms(nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.1),
        nn.Conv2d(8, 4, 3, padding=1))).eval()
    x = torch.randn(2, 3, 16, 16)
    new, report = convert(model, "blur", blur_stem=True, example_input=x)
    assert report.notes == [] and new[0].stride == (1, 1)
    assert [type(m) for m in new[3]] == [nn.Dropout, BlurPool2d]
    assert report.entries[0].blur_at == "3.1" and report.entries[1].blur_of == "0"
    with torch.no_grad():
        expected = model[4](BlurPool2d(8, 2, 4)(model[1:4](F.conv2d(x, model[0].weight,
                                                                    model[0].bias, padding=1))))
        assert torch.allclose(new(x), expected, atol=1e-6)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.bn(self.conv(x))))


def test_functional_activation_falls_back_with_a_note() -> None:
    new, report = convert(Functional().eval(), "blur", blur_stem=True,
                          example_input=torch.randn(1, 3, 16, 16))
    assert [type(m) for m in new.bn] == [nn.BatchNorm2d, BlurPool2d]
    assert report.notes == ["conv: the map after bn is taken by relu() in <model>, a function "
                            "call convert cannot wrap: BlurPool before it"]


class TwoHeads(nn.Module):
    """One ``relu`` module shared, its map taken by two convs: no single place after it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.a, self.b = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(x)))
        return self.relu(self.a(y) + self.b(y))


def test_shared_activation_without_one_consumer_backs_off() -> None:
    new, report = convert(TwoHeads().eval(), "blur", blur_stem=True,
                          example_input=torch.randn(1, 3, 16, 16))
    assert [type(m) for m in new.bn] == [nn.BatchNorm2d, BlurPool2d]
    assert type(new.relu) is nn.ReLU
    assert report.notes == ["conv: relu also runs elsewhere and its map has no single module "
                            "consumer that runs once: BlurPool after bn"]


def test_without_trace_the_blur_follows_the_conv() -> None:
    new, report = convert(tiny(), "blur", trace=False)
    assert new.conv1.stride == (2, 2)  # the first downsampling layer in registration order
    assert [type(m) for m in new.layer1.conv1] == [nn.Conv2d, BlurPool2d]
    assert [type(m) for m in new.layer1.downsample[0]] == [BlurPool2d, nn.Conv2d]
    assert any(n.startswith("not traced: each strided conv's BlurPool is right after it")
               for n in report.notes)


def test_after_conv_is_the_former_placement() -> None:
    new, report = convert(tiny(), "blur", placement="after_conv")
    assert report.options["placement"] == "after_conv" and report.options["blur_stem"] is True
    assert report.notes == []
    for conv in (new.conv1, new.layer1.conv1, new.layer1.downsample[0]):
        assert [type(m) for m in conv] == [nn.Conv2d, BlurPool2d]
    assert new.maxpool.pool.kernel_size == (3, 3) and new.maxpool.pool.padding == (1, 1)
    assert type(new.layer1.conv2) is nn.Conv2d


def test_blur_stem_and_max_pool_sizes() -> None:
    new, report = convert(tiny(), "blur", blur_stem=True, example_input=torch.randn(1, 3, 32, 32))
    assert new.conv1.stride == (1, 1) and [type(m) for m in new.relu] == [nn.ReLU, BlurPool2d]
    assert report.notes == [] and report.options["blur_stem"] is True
    # MaxPool2d(3, 2, 1) -> MaxPool2d(2, 1) + BlurPool: the original size where s divides H
    pool = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(3, 2, 1))
    for size, padding in [(32, None), (32, "circular"), (31, None)]:
        x = torch.randn(1, 1, size, size)
        new, _ = convert(pool, "blur", padding, example_input=x) if size % 2 == 0 else \
            convert(pool, "blur", trace=False)
        assert new(x).shape[-1] == (16 if size == 32 else 15)  # 16 before, for odd sizes
    unpadded, _ = convert(nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(3, 2)), "blur")
    assert unpadded[1].pool.kernel_size == 3  # Zhang's AlexNet: MaxPool2d(3, 1)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("blur_stem", [False, True])
def test_circular_conversion_is_equivariant_to_multiples_of_the_stride(
        placement: str, blur_stem: bool) -> None:
    """With circular padding every layer is equivariant to shifts by multiples of its stride, so
    the network (total stride 16, global pool) is invariant to shifts by multiples of 16, in
    float64 to rounding, and not to a shift by 1."""
    model = tiny().double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    new, report = convert(model, "blur", "circular", placement=placement, blur_stem=blur_stem,
                          example_input=x)
    with torch.no_grad():
        ref = new(x)
        for shift in [(16, 0), (0, -16), (16, 16)]:
            assert (new(torch.roll(x, shift, (-2, -1))) - ref).abs().max() < 1e-12
        assert (new(torch.roll(x, (1, 0), (-2, -1))) - ref).abs().max() > 1e-6
    assert report.invariance_check is not None and report.invariance_check > 1e-6


def test_placement_options_are_checked() -> None:
    with pytest.raises(ValueError, match="placement must be one of"):
        convert(tiny(), "blur", placement="before_conv")
    for kwargs in ({"placement": "zhang"}, {"blur_stem": True}):
        with pytest.raises(ValueError, match="downsample='blur' only"):
            convert(tiny(), "aps", **kwargs)
