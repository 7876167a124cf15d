"""shiftlab.models.random_init: random weights moved away from the degenerate point."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shiftlab.models import randomise_norms, resnet18, spread_classifier


def test_randomise_norms_moves_every_batch_norm_off_the_identity() -> None:
    torch.manual_seed(0)
    model = randomise_norms(resnet18(num_classes=10))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 20
    for m in norms:
        assert m.running_mean.abs().max() > 0 and (m.running_var != 1).all()
        assert 0.5 <= m.weight.min() and m.weight.max() <= 1.5 and m.bias.abs().max() <= 0.2


def test_spread_classifier_centres_and_scales_the_logits() -> None:
    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval()
    images = torch.rand(16, 3, 32, 32)
    with torch.no_grad():
        before = model(images).argmax(1)
    assert spread_classifier(model, model.fc, images) is model
    with torch.no_grad():
        logits = model(images)
    assert logits.mean(0).abs().max() < 1e-4  # centred on the images' mean feature
    assert torch.isclose((logits - logits.mean(0)).std(), torch.tensor(1.0), atol=1e-4)
    assert len(logits.argmax(1).unique()) > len(before.unique())  # the classes spread


def test_spread_classifier_needs_two_images_and_removes_its_hook() -> None:
    model = resnet18(num_classes=10).eval()
    with pytest.raises(ValueError, match="at least 2 images"):
        spread_classifier(model, model.fc, torch.rand(1, 3, 32, 32))
    spread_classifier(model, model.fc, torch.rand(2, 3, 32, 32))
    assert not model.fc._forward_pre_hooks
