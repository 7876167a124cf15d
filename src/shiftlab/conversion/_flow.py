"""Who consumes what in one forward pass: the data flow :func:`shiftlab.conversion.convert` needs
to place a BlurPool after the norm and activation of a strided conv (``placement="zhang"``).

A hook-free eval copy of the model runs once on the example input with module hooks and a
:class:`torch.overrides.TorchFunctionMode`. Every *call* that takes a tensor derived from the input
is recorded with the calls that produced its tensor inputs: calls of *atomic* modules
(:func:`._trace.atomic`, the rule of convert's other trace: the layers convert replaces,
shiftlab's pooling layers, built-in ``torch.nn`` layers other than containers), and torch
functions called in the ``forward`` of the other modules, the user's own (``F.relu``, ``a + b``,
``x.view``). Calls inside an atomic module are its own business. In-place ops (``ReLU(inplace=
True)``, ``out += x``) return their input: the tensor is then the product of the in-place call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from ._trace import _args, _tensors, atomic, hook_free_eval_copy

#: The producer id of the model's input tensors.
INPUT = -1


@dataclass
class Call:
    """One recorded call: a module (``path``) or a torch function (``function`` in ``path``)."""

    path: str
    function: str | None  # None for a module call
    inputs: tuple[int, ...]  # the calls that produced its tensor inputs (INPUT: the model input)
    module_type: type[nn.Module] | None = None


@dataclass
class Flow:
    """The calls of one forward pass in execution order and, per call, the calls that consume
    its outputs; ``module_calls[path]`` is how often the module at ``path`` ran."""

    calls: list[Call] = field(default_factory=list)
    consumers: dict[int, list[int]] = field(default_factory=dict)
    module_calls: dict[str, int] = field(default_factory=dict)

    def calls_of(self, path: str) -> list[int]:
        """The indices of the calls of the module at ``path``."""
        return [i for i, c in enumerate(self.calls) if c.function is None and c.path == path]


class _Recorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.flow = Flow()
        self.producer: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.frames: list[tuple[str, bool, bool]] = []  # (path, atomic, nested) per running module
        self.pending: tuple[int, ...] = ()

    def _record(self, call: Call, outputs: list[Tensor]) -> None:
        index = len(self.flow.calls)
        self.flow.calls.append(call)
        for p in dict.fromkeys(call.inputs):
            self.flow.consumers.setdefault(p, []).append(index)
        for t in outputs:
            self.producer[t] = index

    def _inputs(self, obj: Any) -> tuple[int, ...]:
        return tuple(self.producer[t] for t in _tensors(obj) if t in self.producer)

    def _busy(self) -> bool:
        return bool(self.frames) and (self.frames[-1][1] or self.frames[-1][2])

    def attach(self, model: nn.Module, planned: Collection[str]) -> None:
        for path, m in model.named_modules():
            m.register_forward_pre_hook(self._pre(path, atomic(m, path in planned)), with_kwargs=True)
            m.register_forward_hook(self._post(path))

    def _pre(self, path: str, whole: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            nested = self._busy()
            self.frames.append((path, whole, nested))
            if whole and not nested:
                self.pending = self._inputs((args, kwargs))
        return hook

    def _post(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            _, whole, nested = self.frames.pop()
            if whole and not nested:
                self.flow.module_calls[path] = self.flow.module_calls.get(path, 0) + 1
                self._record(Call(path, None, self.pending, type(module)), _tensors(output))
        return hook

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self._busy():
            return result
        inputs, outputs = self._inputs((args, kwargs)), _tensors(result)
        if inputs and outputs:
            name = getattr(func, "__name__", repr(func))
            self._record(Call(self.frames[-1][0] if self.frames else "", name, inputs), outputs)
        return result


def trace_flow(model: nn.Module, example: Any, planned: Collection[str]) -> Flow:
    """The :class:`Flow` of ``model`` (a hook-free eval copy, no gradients) on ``example``;
    ``planned``: the paths of the layers convert replaces by downsampling layers (atomic, as in
    :func:`._trace.trace`).

    Raises:
        ValueError: the forward pass fails.
    """
    probe = hook_free_eval_copy(model)
    recorder = _Recorder()
    recorder.attach(probe, planned)
    args = _args(example)
    for t in _tensors(args):
        recorder.producer[t] = INPUT
    try:
        with torch.no_grad(), recorder:
            probe(*args)
    except Exception as err:
        raise ValueError(f"the data-flow trace failed: {err}") from err
    return recorder.flow
