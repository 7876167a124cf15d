"""shiftlab.models against torchvision's own definitions, through the key lists in
``tests/data/torchvision_keys`` (made from torchvision 0.28.0's source; see its README.md)."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import shiftlab.models as models
from shiftlab.models import MODELS
from shiftlab.zoo import count_parameters

KEYS = Path(__file__).parents[1] / "data" / "torchvision_keys"
NAMES = sorted(p.stem for p in KEYS.glob("*.json"))
_BUFFERS = (".running_mean", ".running_var", ".num_batches_tracked")


def reference(name: str) -> dict:
    return json.loads((KEYS / f"{name}.json").read_text())


@pytest.fixture(scope="module", params=NAMES)
def built(request: pytest.FixtureRequest) -> tuple[str, nn.Module]:
    """Each model once (default arguments, seed 0, eval mode), shared by the tests of this module."""
    torch.manual_seed(0)
    return request.param, MODELS[request.param]().eval()


def test_registry_covers_the_key_lists_and_exports_its_factories() -> None:
    assert NAMES == sorted(MODELS) == ["mobilenet_v2", "resnet18", "resnet34", "resnet50",
                                       "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]
    for name, factory in MODELS.items():
        assert getattr(models, name) is factory and name in models.__all__
        parameters = inspect.signature(factory).parameters
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values()), name
        assert parameters["weights"].default is None and parameters["num_classes"].default == 1000


def test_state_dict_names_and_shapes_equal_torchvisions(built: tuple[str, nn.Module]) -> None:
    name, model = built
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == list(reference(name)["keys"].items())  # same names, shapes and order


def test_parameter_count_equals_torchvisions(built: tuple[str, nn.Module]) -> None:
    name, model = built
    ref = reference(name)
    from_keys = sum(math.prod(shape) for key, shape in ref["keys"].items() if not key.endswith(_BUFFERS))
    assert count_parameters(model) == from_keys == ref["num_params"]


def test_same_seed_gives_torchvisions_logits(built: tuple[str, nn.Module]) -> None:
    # torchvision's model after torch.manual_seed(0), in eval mode: same initialisation order, same forward
    name, model = built
    x = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)[0, :8]
    torch.testing.assert_close(logits, torch.tensor(reference(name)["seed0_logits_32x32"]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("size", [224, 32])
def test_eval_forward_shape(built: tuple[str, nn.Module], size: int) -> None:
    _, model = built
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_antialiased_cnns_state_dict_is_ours_plus_blur_filters(name: str) -> None:
    # a cross-check, not the reference: Zhang's models insert blur layers (renaming keys after them)
    # but hold the same tensors in the same order, so their state dicts map onto ours by position
    aa = pytest.importorskip("antialiased_cnns", reason="antialiased_cnns is not installed")
    theirs = [tuple(v.shape) for k, v in getattr(aa, name)(filter_size=4).state_dict().items() if not k.endswith(".filt")]
    assert theirs == [tuple(shape) for shape in reference(name)["keys"].values()]
