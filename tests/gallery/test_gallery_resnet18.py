"""The ImageNet-scale gallery entry (``shiftlab.gallery.imagenet_resnet``,
``examples/gallery_resnet18.py``): ResNet-18 with ImageNet's normalisation inside, seeded random or
a local state dict; the original, Zhang's conversion and APS with circular padding measured on
``skimage.data`` photographs. The example runs in its tests' setting (two photographs at
128 x 128, four shifts) and shows what the theory says: the APS network is exactly invariant to
circular shifts (consistency 1, certificate, pooled features unchanged to float rounding), the
original and Zhang's network are not; with random weights the predictions are degenerate."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

import shiftlab as sl
from shiftlab.gallery.imagenet_resnet import IMAGENET_MEAN, IMAGENET_STD, load_resnet18, photographs, variants
from shiftlab.models import resnet18

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gallery_resnet18.py"
needs_skimage = pytest.mark.skipif(importlib.util.find_spec("skimage") is None,
                                   reason="the gallery's images come from scikit-image: pip install scikit-image")


def test_load_resnet18_is_seeded_normalises_and_loads_weights(tmp_path):
    state = torch.random.get_rng_state()
    a, b, c = load_resnet18(), load_resnet18(), load_resnet18(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    assert not a.training
    assert torch.equal(a.resnet.conv1.weight, b.resnet.conv1.weight)
    assert not torch.equal(a.resnet.conv1.weight, c.resnet.conv1.weight)
    x = torch.rand(1, 3, 32, 32)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        assert torch.allclose(a(x), a.resnet((x - mean) / std), atol=1e-5)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), path)  # torchvision's keys, no "resnet." prefix
    loaded = load_resnet18(path)
    assert torch.equal(loaded.resnet.fc.weight, torch.load(path, weights_only=True)["fc.weight"])
    assert not loaded.training


@needs_skimage
def test_photographs_are_centred_squares_in_unit_range():
    images = photographs(["astronaut", "camera"], 40)
    assert images.shape == (2, 3, 40, 40) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert torch.equal(images[1, 0], images[1, 2])  # camera is grey: the same in every channel


def test_aps_resnet18_pooled_features_unchanged_in_float64():
    """In float64 the APS network's global pool moves with no error beyond rounding (1e-12)."""
    images = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    aps = variants(load_resnet18().double(), images)[2].model
    profile = sl.equivariance(aps, images, shifts=[(0, 0), (1, 1), (-3, 5), (17, -9)], mode="circular",
                              layers=["resnet.avgpool"])
    pooled = profile.layers[-1]
    assert pooled.name == "resnet.avgpool" and pooled.unaligned_error_max < 1e-12


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("shiftlab_gallery_resnet18", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(example):
    return example.run(example.SMOKE)


@needs_skimage
def test_example_aps_is_exactly_invariant_to_circular_shifts(example, smoke):
    reports, results = smoke
    aps = results[2]
    assert aps.name == "APS, circular"
    assert [s.merge.path for s in reports[2].shared_phases] == ["resnet.layer2.0", "resnet.layer3.0", "resnet.layer4.0"]
    assert aps.circular.consistency == 1.0 and aps.circular.clean_consistency == 1.0
    assert aps.circular.certificate.holds and aps.circular.top1_prob_change < 1e-6
    pooled = aps.profile.layers[-1]
    assert pooled.name == "resnet.avgpool" and pooled.unaligned_error_max < 1e-5  # float32 rounding
    assert aps.profile.first_break(example.TOL).name == "resnet.conv1.pool"  # APS moves its map by whole pixels


@needs_skimage
def test_example_original_and_zhang_are_not_invariant(example, smoke):
    _, results = smoke
    for m in results[:2]:
        assert not m.circular.certificate.holds, m.name
        assert m.circular.top1_prob_change > 1e-5, m.name
        assert m.profile.layers[-1].unaligned_error > 1e-2, m.name
        # the stem conv is strided in both (Zhang's pool_only default keeps it): it aliases
        assert m.profile.first_break(example.TOL, interior=True).name == "resnet.conv1", m.name
    original, blur = (m.profile.layers[-1].unaligned_error for m in results[:2])
    assert blur < original  # the blur helps, without making the network invariant


@needs_skimage
def test_example_says_random_weights_are_degenerate_and_prints(example, smoke):
    reports, results = smoke
    assert all(m.circular.degenerate for m in results)  # near-flat: random weights
    assert all(m.crop is not None and m.crop.mode == "crop" for m in results)
    out = io.StringIO()
    example.print_result(reports, results, Console(file=out, width=200), profiles=True)
    text = out.getvalue()
    for needle in ("APS, circular", "blur (Zhang)", "resnet.layer4.1", "degenerate", "certificate"):
        assert needle in text
