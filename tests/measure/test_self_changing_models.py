"""A model whose forward changes its own state (BatchNorm forced into training mode inside
``forward``, a counter buffer; issue 21, case 7): ``sl.invariance`` and ``sl.equivariance`` warn
that the numbers depend on the batch size and order, and leave the model exactly as before."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import shiftlab as sl


class SelfChanging(nn.Module):
    """BatchNorm put in training mode by its own forward (its statistics follow every batch), and
    a counter of forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular")
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.bn.train()
        self.calls += 1
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _state(model: nn.Module) -> tuple[dict, dict]:
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {name: m.training for name, m in model.named_modules()})


@pytest.mark.parametrize("measure", [sl.invariance, sl.equivariance])
def test_a_forward_that_changes_its_own_state_warns_and_the_model_is_restored(measure):
    torch.manual_seed(0)
    model = SelfChanging().eval()
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    weights, modes = _state(model)
    same = copy.deepcopy(model)
    with pytest.warns(UserWarning, match=r"changed its own state during the forward pass \(buffers calls, bn\.running_mean, "
                      r"bn\.running_var, bn\.num_batches_tracked\).*depend on the batch size and order.*restored"):
        measure(model, images, shifts=1, batch_size=4)
    after, after_modes = _state(model)
    assert after.keys() == weights.keys() and all(torch.equal(after[k], weights[k]) for k in weights)
    assert after_modes == modes  # bn back in eval mode, as the user left it
    with pytest.warns(UserWarning, match="changed its own state"):  # a second call measures the same model again
        measure(same, images, shifts=1, batch_size=4)


def test_a_model_that_keeps_its_state_gives_no_such_warning():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3))
    model(torch.rand(2, 1, 8, 8))
    model.eval()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.invariance(model, torch.rand(4, 1, 8, 8), shifts=1)
