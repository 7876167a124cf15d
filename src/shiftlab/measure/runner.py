"""Run a user's model for measurement and leave it exactly as it was.

:func:`measuring` puts every module in eval mode (with a warning when any was training), runs it
under ``torch.inference_mode`` (no autograd records, no version counters), and on exit restores
each module's ``training`` flag and removes the hooks registered through it, also when the body
raises. Parameters and buffers are not touched: eval mode freezes BatchNorm statistics and
``inference_mode`` leaves ``requires_grad`` as it is. Tensors made inside are inference tensors:
results leave as Python numbers or as clones made outside.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from shiftlab.measure.validation import check_module

__all__ = ["Measuring", "Runner", "TorchRunner", "forward_with_leaf_hook", "kept_buffers", "kept_modes", "measuring",
           "model_device", "model_dtype", "on_device", "resolve_device"]


class Measuring:
    """Handle yielded by :func:`measuring`; registers hooks that are removed on exit."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def forward_hook(self, module: nn.Module, hook: Callable[..., object]) -> None:
        """Register ``hook`` on ``module`` for the duration of the measurement."""
        self._handles.append(module.register_forward_hook(hook))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def resolve_device(device: str | torch.device | None, model: nn.Module | None = None) -> torch.device:
    """``None``: the model's device (the CPU without a model); ``"auto"``: CUDA, else MPS, else
    CPU; otherwise ``device`` (``ValueError`` when it is not available here)."""
    if device is None:
        return model_device(model) if model is not None else torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available here; use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was asked for but MPS is not available here; use device='auto' or 'cpu'")
    return dev


@contextmanager
def on_device(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Run ``model`` on ``device`` for the block and move it back after, also when the body raises.

    ``Module.to`` moves parameters in place, so the user's references (and an optimizer's) stay valid.
    """
    before = model_device(model)
    if before == device or (before.type == device.type and device.index is None):
        yield
        return
    model.to(device)
    try:
        yield
    finally:
        model.to(before)


class TorchRunner:
    """The engine's view of a torch module (``docs/definitions.md``, "How a measurement runs"):
    where it runs, in which dtype, one forward pass, and the measurement state. The driver talks
    to a model only through these, so another backend can stand in for it
    (:class:`~shiftlab.measure.onnx_runner.OnnxRunner`); per-layer equivariance registers forward
    hooks through :meth:`session`'s handle (an ONNX runner's handle takes a hook on its layer maps).

    Args:
        model: the user's module; left exactly as it was after every session.
        device: where to run (:func:`resolve_device`); the model is moved there for a session
            and moved back after.
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None) -> None:
        check_module(model)
        self.model = model
        self.device = resolve_device(device, model)

    @property
    def dtype(self) -> torch.dtype | None:
        """The floating dtype inputs are cast to (the model's), or None to keep theirs."""
        return model_dtype(self.model)

    @property
    def identity(self) -> nn.Module:
        """What says it is the same model on every process: the module (compared by its
        parameters and buffers, :func:`shiftlab.measure.distributed.check_same_everywhere`)."""
        return self.model

    def __call__(self, batch: torch.Tensor) -> object:
        """One forward pass of ``batch [b, C, h, w]`` (on :attr:`device`, in :attr:`dtype`)."""
        return self.model(batch)

    @contextmanager
    def session(self, *, warn: bool = True) -> Iterator[Measuring]:
        """The measurement state: on :attr:`device`, eval mode, ``inference_mode``; the model's
        device, modes and hooks restored on exit (also when the body raises)."""
        with on_device(self.model, self.device), measuring(self.model, warn=warn) as handle:
            yield handle

    def bytes_per_image(self, example: torch.Tensor) -> int:
        """Bytes of every leaf module's output for the one-image batch ``example`` (an upper
        bound on what a forward pass holds per image under ``inference_mode``, where outputs
        are freed when unused). Call inside :meth:`session`."""
        total = [example.numel() * example.element_size()]

        def hook(module: nn.Module, inputs: tuple[object, ...], output: object) -> None:
            if isinstance(output, torch.Tensor):
                total[0] += output.numel() * output.element_size()

        forward_with_leaf_hook(self.model, example, hook)
        return total[0]


class Runner(Protocol):
    """What the driver needs of a model (``docs/definitions.md``, "How a measurement runs"):
    :class:`TorchRunner` and :class:`~shiftlab.measure.onnx_runner.OnnxRunner` provide it."""

    device: torch.device

    @property
    def dtype(self) -> torch.dtype | None: ...

    @property
    def identity(self) -> object: ...

    def __call__(self, batch: torch.Tensor) -> object: ...

    def session(self, *, warn: bool = True) -> AbstractContextManager[Any]: ...

    def bytes_per_image(self, example: torch.Tensor) -> int: ...


def forward_with_leaf_hook(model: nn.Module, x: torch.Tensor, hook: Callable[..., object]) -> object:
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
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """Floating dtype of the model's first floating parameter or buffer, or None."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that names the user's line: the first caller
    outside shiftlab (and outside ``contextlib``, which runs the context managers in between)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and (frame.f_code.co_filename.startswith(package)
                                 or os.path.basename(frame.f_code.co_filename) == "contextlib.py"):
        frame, level = frame.f_back, level + 1
    return level


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
    check_module(model)
    if warn and any(module.training for module in model.modules()):
        warnings.warn(
            "the model is in training mode; shiftlab measures it in eval mode and restores training mode "
            "afterwards (call model.eval() first to silence this warning)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    session = Measuring()
    with kept_modes(model), kept_buffers(model):
        try:
            model.eval()
            with torch.inference_mode():
                yield session
        finally:
            session.close()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shapes, dtypes and values, NaN equal to NaN."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    return torch.equal(a, b) or bool(((a == b) | ((a != a) & (b != b))).all())


@contextmanager
def kept_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer of ``model`` on exit (also when the body raises), and warn when a
    forward pass changed one or a parameter (issue 21, case 7): a forward that puts BatchNorm in
    training mode, or counts its calls, makes each output depend on the batches before it. The
    buffers are copied on entry (BatchNorm statistics: small next to the weights) and compared
    on exit; a parameter is only checked (its version counter, bumped by an in-place change)."""
    buffers = [(module, name, tensor, tensor.detach().clone())
               for mname, module in model.named_modules() for name, tensor in module._buffers.items()
               if tensor is not None]
    names = {id(module): mname for mname, module in model.named_modules()}
    keys = {module: set(module._buffers) for module in model.modules()}
    params = [(name, p, p._version) for name, p in model.named_parameters()]
    try:
        yield
    finally:
        changed: list[str] = []
        with torch.inference_mode():
            for module, name, tensor, saved in buffers:
                now = module._buffers.get(name)
                if now is not tensor or not _same(tensor, saved):
                    changed.append(f"{names[id(module)]}.{name}".lstrip("."))
                    if tensor.shape == saved.shape and tensor.dtype == saved.dtype:
                        tensor.copy_(saved)
                    else:
                        tensor.data = saved
                    module._buffers[name] = tensor
            for module, before in keys.items():  # buffers registered by the forward
                for name in set(module._buffers) - before:
                    changed.append(f"{names[id(module)]}.{name}".lstrip("."))
                    del module._buffers[name]
        moved = [name for name, p, version in params if p._version != version]
        if changed or moved:
            what = ", ".join(x for x in (f"buffers {', '.join(changed)}" if changed else "",
                                         f"parameters {', '.join(moved)}" if moved else "") if x)
            warnings.warn(
                f"the model changed its own state during the forward pass ({what}): each output depends on the "
                "batches before it, so these numbers depend on the batch size and order. shiftlab restored the "
                + ("buffers" if changed else "") + (" (the parameters it cannot: their old values were not kept)"
                                                     if moved else "")
                + " afterwards; keep the forward from changing the model (e.g. no .train() or running counts "
                "inside forward) for numbers that mean one thing",
                UserWarning, stacklevel=user_stacklevel())


@contextmanager
def kept_modes(model: nn.Module) -> Iterator[None]:
    """Restore every module's ``training`` flag on exit, also when the body raises (the one
    save/restore of modes: measuring, precise BatchNorm)."""
    modes = {module: module.training for module in model.modules()}
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
