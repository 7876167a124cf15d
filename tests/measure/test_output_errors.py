"""Errors about a model's output name what the user can change (issue 21, cases 15 and 18): a
model with integer outputs is refused with the fix (it was "torch.finfo() requires a floating
point input type"), and an output of the wrong kind is described without shiftlab's internal
batch size (it said "for a batch of 72")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shiftlab as sl


class IntegerOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1)[:, :3] * 10).long()


class TupleOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple:
        return x.flatten(1)[:, :3], x


class DictOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": x.flatten(1)[:, :3]}


class IntegerMap(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 10).long()


def test_integer_outputs_are_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"the model's output is torch\.int64; shiftlab needs floating-point outputs "
                       r"\(logits or feature maps\): return them before any rounding or argmax"):
        sl.invariance(IntegerOutput(), torch.rand(5, 1, 8, 8), shifts=1)
    with pytest.raises(TypeError, match=r"outputs torch\.int64; shiftlab needs floating-point outputs"):
        sl.equivariance(IntegerMap(), torch.rand(5, 1, 8, 8), shifts=1)


@pytest.mark.parametrize(("model", "kind"), [(TupleOutput(), "tuple"), (DictOutput(), "dict")])
def test_an_output_of_the_wrong_kind_is_described_without_the_internal_batch_size(model, kind):
    with pytest.raises(ValueError) as err:
        sl.invariance(model, torch.rand(72, 1, 8, 8), shifts=1, batch_size=72)
    text = str(err.value)
    assert f"invariance() needs a classifier whose output is one tensor [N, classes]; got a {kind}" in text, text
    assert "batch of" not in text and "72" not in text, text


def test_a_map_output_is_described_with_n_for_the_images():
    with pytest.raises(ValueError, match=r"output is one tensor \[N, classes\]; got a tensor of shape \(N, 1, 8, 8\)\. "
                       r"For a dense \(map\) output"):
        sl.invariance(nn.Identity(), torch.rand(72, 1, 8, 8), shifts=1, batch_size=72)
