"""Load a user's model from ``path/to/file.py:factory`` and optional weights."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_factory_model", "load_weights"]


def load_factory_model(target: str) -> nn.Module:
    """Import ``file.py`` and call ``factory()``; the result must be an ``nn.Module``.

    ``target`` is ``path/to/file.py:factory``.
    """
    path_str, sep, factory_name = target.rpartition(":")
    if not sep or not path_str or not factory_name:
        raise ValueError(f"expected MODEL as path/to/file.py:factory, got {target!r}")
    path = Path(path_str)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"shiftlab_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        available = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise ValueError(f"{path} has no callable {factory_name!r}; callables there: {available}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a ``state_dict`` file (with ``weights_only=True``) into ``model``, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"cannot read weights from {path}: {err}. Is it a file saved with torch.save(model.state_dict())?") from err
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict (got {type(state).__name__})")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"the weights in {path} do not fit the model: {err}") from err
