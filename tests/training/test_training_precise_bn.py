"""Precise BatchNorm statistics: exact averages over the given batches, nothing else changed."""

from __future__ import annotations

import copy

import torch
from torch import nn
from training_helpers import tiny_cnn

from shiftlab.training import TrainConfig, train
from shiftlab.training.precise_bn import has_batchnorm, recompute_batchnorm


def test_running_stats_become_the_average_of_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)).eval()
    model[1].running_mean.fill_(5.0)
    batches = [torch.randn(4, 1, 6, 6) * (i + 1) + i for i in range(3)]
    before = [p.clone() for p in model.parameters()]
    recompute_batchnorm(model, batches)
    with torch.no_grad():
        feats = [model[0](b) for b in batches]
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(dim=0)
    var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(dim=0)
    torch.testing.assert_close(model[1].running_mean, mean)
    torch.testing.assert_close(model[1].running_var, var)
    assert model[1].momentum == 0.1 and not model.training and not model[1].training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_transform_is_applied_and_models_without_batchnorm_are_detected():
    model = nn.Sequential(nn.BatchNorm2d(1))
    recompute_batchnorm(model, [torch.zeros(2, 1, 3, 3)], transform=lambda x: x + 2.0)
    assert model[0].running_mean.item() == 2.0
    assert has_batchnorm(model) and not has_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1)))


def test_eval_mode_matches_train_mode_after_training(digits):
    """With precise statistics, eval-mode predictions on training batches match batch-statistic ones."""
    images, labels = digits
    images, labels = images[:512], labels[:512]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 10))
    train(model, images, labels, TrainConfig(epochs=2, batch_size=512, lr=5e-2))
    with torch.no_grad():
        eval_logits = model(images)
        model.train()
        batch_logits = model(images)
    torch.testing.assert_close(eval_logits, batch_logits, atol=1e-4, rtol=1e-3)


def test_the_recount_changes_no_weight_and_only_the_final_statistics(digits):
    """Train-mode steps use batch statistics, so recounting only at the end gives the same weights."""
    images, labels = digits[0][:512], digits[1][:512]
    base = tiny_cnn()
    plain, precise = copy.deepcopy(base), copy.deepcopy(base)
    train(plain, images, labels, TrainConfig(epochs=3, precise_bn=False))
    train(precise, images, labels, TrainConfig(epochs=3, precise_bn=True))
    for (name, a), b in zip(plain.named_parameters(), precise.parameters(), strict=True):
        assert torch.equal(a, b), name
    bn = [m for m in precise.modules() if isinstance(m, nn.BatchNorm2d)][0]
    bn_plain = [m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)][0]
    assert not torch.equal(bn.running_mean, bn_plain.running_mean)
