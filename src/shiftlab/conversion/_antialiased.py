"""Load an ``antialiased_cnns`` state dict (Zhang's reference package) into a shiftlab conversion.

``convert(model, "blur")`` with the default ``placement="zhang"`` builds Zhang's network from a
torchvision-style model, with the same parameters and buffers in the same registration order,
but other keys: Zhang inserts each BlurPool as its own list element (``features.7``,
``downsample.0``, ``conv.2``), which shifts the indices after it, drops MobileNetV2's dropout
(``classifier.0``), and stores each BlurPool's filter as a persistent buffer ``filt``; shiftlab's
:class:`~shiftlab.nn.BlurPool2d` keeps its filter out of the state dict.

The map pairs the reference's learned entries (every key but the ``*.filt`` filters) with the
conversion's state-dict entries in order, and checks that each pair ends in the same name
(``weight``, ``running_var``, ...) and has the same shape; the ``k``-th ``filt`` is checked
against the filter of the conversion's ``k``-th ``BlurPool2d`` (same shape and values, so a
checkpoint of another ``filter_size`` is refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from shiftlab.nn import BlurPool2d

__all__ = ["antialiased_key_map", "load_antialiased_state_dict"]

_FILTER = "filt"


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _unwrap(state_dict: Mapping[str, Any]) -> Mapping[str, Tensor]:
    """The state dict itself, or the ``"state_dict"`` entry of a published checkpoint."""
    inner = state_dict.get("state_dict")
    return inner if isinstance(inner, Mapping) else state_dict


def _check_filters(model: nn.Module, filters: list[tuple[str, Tensor]]) -> None:
    blurs = [(path, m) for path, m in model.named_modules() if isinstance(m, BlurPool2d)]
    if len(blurs) != len(filters):
        raise ValueError(f"the state dict has {len(filters)} BlurPool filters, the model "
                         f"{len(blurs)} BlurPool2d layers")
    for (key, theirs), (path, blur) in zip(filters, blurs, strict=True):
        ours = blur.filt
        if theirs.shape != ours.shape or not torch.allclose(theirs.to(ours), ours):
            raise ValueError(
                f"{key} {tuple(theirs.shape)} is not the filter of {path} "
                f"(BlurPool2d({blur.channels}, filt_size={blur.filt_size}), "
                f"{tuple(ours.shape)}): convert with the checkpoint's filter_size")


def antialiased_key_map(model: nn.Module, state_dict: Mapping[str, Any]) -> dict[str, str]:
    """Map the keys of an ``antialiased_cnns`` state dict to ``model``'s.

    Args:
        model: the result of ``convert(torchvision_style_model, "blur", filt_size=k)`` (default
            placement), e.g. of :func:`shiftlab.models.resnet18`.
        state_dict: ``antialiased_cnns.<arch>(filter_size=k).state_dict()``, or a published
            checkpoint ``{"state_dict": ...}``.

    Returns:
        ``{reference key: model key}`` for every entry but the BlurPool filters (checked, not
        loaded: shiftlab's filters are constants), e.g. ``"layer2.0.downsample.1.weight" ->
        "layer2.0.downsample.0.1.weight"``.

    Raises:
        ValueError: the two do not pair up (different counts, names or shapes; the message
            names the first mismatch) or a filter differs (another ``filter_size``).
    """
    theirs = _unwrap(state_dict)
    learned = [k for k in theirs if _leaf(k) != _FILTER]
    ours = model.state_dict()
    if len(learned) != len(ours):
        raise ValueError(f"the state dict has {len(learned)} entries besides BlurPool filters, "
                         f"the model {len(ours)}: not the same architecture")
    for ref_key, key in zip(learned, ours, strict=True):
        if _leaf(ref_key) != _leaf(key) or theirs[ref_key].shape != ours[key].shape:
            raise ValueError(f"{ref_key} {tuple(theirs[ref_key].shape)} does not pair with "
                             f"{key} {tuple(ours[key].shape)}: not the same architecture")
    _check_filters(model, [(k, theirs[k]) for k in theirs if _leaf(k) == _FILTER])
    return dict(zip(learned, ours, strict=True))


def load_antialiased_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> nn.Module:
    """Load an ``antialiased_cnns`` state dict into a shiftlab conversion (see
    :func:`antialiased_key_map`); returns ``model``.

    Example (needs the ``antialiased_cnns`` package)::

        import antialiased_cnns, torch
        from shiftlab import convert
        from shiftlab.conversion import load_antialiased_state_dict
        from shiftlab.models import resnet18

        reference = antialiased_cnns.resnet18(filter_size=4)
        ours, _ = convert(resnet18(), "blur", example_input=torch.randn(1, 3, 64, 64))
        load_antialiased_state_dict(ours, reference.state_dict())
    """
    theirs = _unwrap(state_dict)
    mapping = antialiased_key_map(model, theirs)
    model.load_state_dict({key: theirs[ref_key] for ref_key, key in mapping.items()})
    return model
