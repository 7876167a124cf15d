"""The shift theory of every pooled-head zoo model, exactly in float64 at random weights.

With circular padding (``docs/definitions.md``, circular shifts), a trunk of circular convs,
pointwise layers and stride-2 subsampling is equivariant to shifts that are multiples of its total
stride 8: ``features(T_{8k} x) = T_k features(x)``; a global pool on top makes the classifier
invariant to them. APS makes it invariant to every circular shift. Other shifts alias.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.zoo import build, names

pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = 1e-10
MULTIPLES_OF_8 = [(8 * a, 8 * b) for a in range(4) for b in range(4)]  # every one in a 32x32 image
POOLED = [n for n in names() if not n.endswith("_fc")]
DECIMATING = [n for n in POOLED if not n.startswith("aps_")]
APS = [n for n in POOLED if n.startswith("aps_")]


def random_model(name: str) -> nn.Module:
    """``name`` with circular padding, random weights and random BatchNorm statistics, float64, eval."""
    model = build(name, width=8, padding_mode="circular", seed=3).double()
    gen = torch.Generator().manual_seed(4)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        c = bn.num_features
        with torch.no_grad():
            bn.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
            bn.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            bn.weight.copy_(0.5 + torch.rand(c, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(c, generator=gen))
    return model.eval()


def images(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", DECIMATING)
def test_trunk_equivariant_and_classifier_invariant_at_multiples_of_the_stride(name: str) -> None:
    model = random_model(name)
    # trunk output at shift 8k == torch.roll of the unshifted output by k (stride inferred: 32 / 4)
    sl.check_equivariant(model.features, (2, 1, 32, 32), shifts=MULTIPLES_OF_8, atol=EXACT, rtol=0)
    sl.check_invariant(model, (2, 1, 32, 32), shifts=MULTIPLES_OF_8, atol=EXACT, rtol=0)
    # the same by hand, on one shift, against torch.roll
    x = images()
    with torch.no_grad():
        ref, out = model.features(x), model.features(sl.shift(x, 8, -16))
        assert (out - torch.roll(ref, (1, -2), (-2, -1))).abs().max() < EXACT
        assert (model(sl.shift(x, 8, -16)) - model(x)).abs().max() < EXACT


@pytest.mark.parametrize("name", APS)
def test_aps_classifier_invariant_to_every_circular_shift(name: str) -> None:
    model = random_model(name)
    one_period = list(itertools.product(range(8), repeat=2))  # every residue mod 8, (1, 3) among them
    sl.check_invariant(model, (2, 1, 32, 32), shifts=[*one_period, (13, 27), (31, 1)], atol=EXACT, rtol=0)
    x = images()
    with torch.no_grad():
        assert (model(sl.shift(x, 1, 3)) - model(x)).abs().max() < EXACT


def test_unaligned_shifts_alias_in_the_strided_fcn() -> None:
    model = random_model("strided_gap")
    x = images()
    with torch.no_grad():
        assert (model(sl.shift(x, 0, 1)) - model(x)).abs().max() > 1e-3
    with pytest.raises(AssertionError, match=r"not shift invariant: worst shift"):
        sl.check_invariant(model, (2, 1, 32, 32), shifts=[(0, 1), (4, 0)], atol=EXACT, rtol=0)
