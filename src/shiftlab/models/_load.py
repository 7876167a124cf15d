"""The ``weights=`` argument of every :mod:`shiftlab.models` factory: a local state-dict file."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from shiftlab.weights import load_weights

__all__ = ["NormLayer", "with_weights"]

M = TypeVar("M", bound=nn.Module)

#: A normalisation layer built from its channel count (``nn.BatchNorm2d`` by default).
NormLayer = Callable[[int], nn.Module]


def with_weights(model: M, weights: str | os.PathLike[str] | None) -> M:
    """``model`` with the state dict saved at ``weights`` copied in, or as initialised if ``None``.

    The file is read with ``torch.load(..., weights_only=True, map_location="cpu")`` and every key
    and shape is checked before anything is copied (:func:`shiftlab.weights.load_weights`, whose
    ``FileNotFoundError`` / ``ValueError`` name the missing, unexpected and mis-shaped keys). The
    model stays in training mode, as a torchvision factory returns it; nothing is downloaded.
    """
    if weights is None:
        return model
    return load_weights(model, os.fspath(weights)).train()
