"""Run a user's model for measurement and leave it exactly as it was.

:func:`measuring` puts every module in eval mode (with a warning when any was training), runs it
under ``torch.inference_mode`` (no autograd records, no version counters), and on exit restores each module's ``training`` flag and removes the hooks registered
through it, also when the body raises. Parameters and buffers are not touched: eval mode freezes
BatchNorm statistics and ``inference_mode`` leaves ``requires_grad`` as it is. Tensors made inside
are inference tensors: results leave as Python numbers or as clones made outside.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["Measuring", "forward_with_leaf_hook", "measuring", "model_device", "model_dtype"]


class Measuring:
    """Handle yielded by :func:`measuring`; registers hooks that are removed on exit."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def forward_hook(self, module: nn.Module, hook: Callable) -> None:
        """Register ``hook`` on ``module`` for the duration of the measurement."""
        self._handles.append(module.register_forward_hook(hook))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def forward_with_leaf_hook(model: nn.Module, x: torch.Tensor, hook: Callable) -> object:
    """Run ``model(x)`` once with ``hook(module, inputs, output)`` on every leaf module (the model
    itself when it has no children); the hooks are removed after, also when the pass raises."""
    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        return model(x)
    finally:
        for handle in handles:
            handle.remove()


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless model)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """Floating dtype of the model's first floating parameter or buffer, or None."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


@contextmanager
def measuring(model: nn.Module, *, warn: bool = True) -> Iterator[Measuring]:
    """Context in which ``model`` runs in eval mode under ``torch.inference_mode``; everything is
    restored after.

    With ``warn=True`` a ``UserWarning`` says so when any module was in training mode.

    Example:
        >>> m = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Dropout()).train()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     with measuring(m):
        ...         m.training
        False
        >>> m.training
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modes = {module: module.training for module in model.modules()}
    if warn and any(modes.values()):
        warnings.warn(
            "the model is in training mode; shiftlab measures it in eval mode and restores training mode "
            "afterwards (call model.eval() first to silence this warning)",
            UserWarning,
            stacklevel=4,
        )
    session = Measuring()
    try:
        model.eval()
        with torch.inference_mode():
            yield session
    finally:
        session.close()
        for module, training in modes.items():
            module.training = training
