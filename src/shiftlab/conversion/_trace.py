"""One traced forward pass for :func:`shiftlab.conversion.convert`: what the module tree cannot say.

The trace runs a hook-free eval-mode deep copy of the model on an example input (the user's
``example_input``, or a built ``randn`` batch ``[2, C, 32, 32]``) with

- forward pre/post hooks on every module: each module's input and output shapes (so pooling
  layers get their channel count from the data, whatever the registration order), which module
  is running (to name a failing layer), and the execution order (``after``/``before`` of a
  finding);
- a :class:`torch.overrides.TorchFunctionMode`: it sees every torch function call, also the
  ones a custom module's ``forward`` makes between layers (``F.max_pool2d``, ``F.interpolate``,
  ``x[..., ::2, ::2]``, ``a + b``, ``torch.cat``). A call outside any known layer whose 4-D
  output is smaller in ``H`` or ``W`` than its input (and not ``1 x 1``, a global pool) is
  *downsampling outside modules*. Each activation tensor also carries its *lineage*: the set of
  downsampling calls (layers or functions) it went through; a call that combines 4-D maps with
  different lineages, where an APS layer makes the difference, is a :class:`BranchMerge`.
  Each tensor's spatial axes are followed through reorderings (``permute``, ``transpose``,
  ``movedim``, ...) and the ops on reordered maps: a channels-last ``[N, H, W, C]`` map (a
  ConvNeXt ``LayerNorm2d`` or block) is compared by its ``H, W``, so the reordering is no
  reduction, and a reduction of a reordered map is still one.

Why not :mod:`torch.fx`: symbolic tracing fails on data-dependent control flow (``if x.shape[-1]
> 64``), on non-torch code in ``forward`` and on many third-party models, and gives no sizes
without a separate shape propagation. Hooks and a function mode observe the real run, whatever
``forward`` does, and report concrete sizes; the price is that they see one input only: a branch
not taken on the example is not checked.

"Known layers" (:func:`atomic`: calls inside them are their own business) are the modules
convert plans to replace, shiftlab's pooling layers, and built-in ``torch.nn`` layers other than
containers. Calls in the ``forward`` of every other module (the model's own classes, with or
without children) are inspected. The data-flow trace of :mod:`._flow` takes the same modules as
one call each.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.overrides import TorchFunctionMode
from torch.utils.weak import WeakTensorKeyDictionary

from shiftlab.nn import APSPool2d, MaxAPSPool2d

from ._plan import DOWNSAMPLE_ACTIONS, SHIFTLAB_POOLS, builtin, plan_one, reference_tensor, under
from ._report import INVARIANCE_SHIFTS, BranchMerge, UnconvertedDownsampling

#: ``H = W`` of the input built when no ``example_input`` is given.
EXAMPLE_SIZE = 32
#: Built-in modules whose ``forward`` is the modules they hold: not atomic.
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_EMPTY: frozenset[int] = frozenset()
#: Where ``H, W`` are in a map that no reordering touched: ``[N, C, H, W]``.
_NCHW = (2, 3)
#: Torch functions that only reorder the axes of their first argument.
_REORDERS = frozenset({"permute", "transpose", "transpose_", "swapaxes", "swapdims", "movedim",
                       "moveaxis"})


def atomic(module: nn.Module, planned: bool) -> bool:
    """Whether a trace (this module's and :mod:`._flow`'s) takes a call of ``module`` as one step
    and does not look inside it: a layer convert replaces (``planned``), one of shiftlab's pooling
    layers, or a built-in layer (:func:`._plan.builtin`) other than a container. The modules of
    the user's own classes, leaves included, are entered: the torch calls in their ``forward``
    (``F.max_pool2d``, ``x[..., ::2, ::2]``, ``a + b``) are what the traces look at."""
    return planned or isinstance(module, SHIFTLAB_POOLS) or (
        builtin(type(module)) and not isinstance(module, _CONTAINERS))


def hook_free_eval_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without forward hooks, in eval mode."""
    probe = copy.deepcopy(model)
    for m in probe.modules():
        m._forward_hooks.clear()
        m._forward_pre_hooks.clear()
    return probe.eval()


def _args(example: Any) -> tuple[Any, ...]:
    return tuple(example) if isinstance(example, (tuple, list)) else (example,)


def _tensors(obj: Any) -> list[Tensor]:
    """The tensors in ``obj`` (a tensor, or nested tuples, lists and dict values)."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _hw(t: Tensor) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.dim() == 4 else None


def _reduces(before: tuple[int, int], after: tuple[int, int], *, to_point: bool = False) -> bool:
    """Smaller in ``H`` or ``W``, and not a global pool to ``1 x 1`` (unless ``to_point``: a
    replaced or APS layer's ``2 x 2 -> 1 x 1`` is a downsampling that a larger input shows)."""
    return (to_point or after != (1, 1)) and (after[0] < before[0] or after[1] < before[1])


def _moved(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           dims: tuple[int, int]) -> tuple[int, int]:
    """Where the reordering ``func(args[0], *args[1:], **kwargs)`` puts the axes ``dims`` of
    ``args[0]`` (found by running it on a meta tensor whose axis ``i`` has size ``i + 1``)."""
    probe = torch.empty(tuple(range(1, args[0].dim() + 1)), device="meta")
    sizes = list(func(probe, *args[1:], **kwargs).shape)
    return sizes.index(dims[0] + 1), sizes.index(dims[1] + 1)


def build_example(model: nn.Module) -> tuple[Tensor | None, str]:
    """``(randn [2, C, 32, 32] on the model's device and dtype, description)``, with ``C`` the
    ``in_channels`` of the first 2-D convolution in registration order (seeded, so reports are
    reproducible), or ``(None, why not)``."""
    conv = next((m for m in model.modules()
                 if isinstance(m, _ConvNd) and len(m.kernel_size) == 2), None)
    if conv is None:
        return None, "not traced: no 2-D convolution to take the input channels from"
    x = torch.randn(2, conv.in_channels, EXAMPLE_SIZE, EXAMPLE_SIZE,
                    generator=torch.Generator().manual_seed(0))
    ref = reference_tensor(model)
    if ref is not None:
        x = x.to(device=ref.device, dtype=ref.dtype)
    return x, f"built input {tuple(x.shape)}"


@dataclass
class _Frame:
    path: str
    kind: str | None  # the event kind if the module downsamples, see _Tracer._classify
    atomic: bool
    nested: bool  # inside an atomic module
    after: str
    x: Tensor | None


@dataclass(frozen=True)
class Event:
    """One downsampling call of a trace.

    Attributes:
        label: the layer's module path (``"<model>"`` for the model), or ``op() in path``.
        adaptive: an APS choice (a converted layer under ``downsample="aps"``, or an APS layer).
        in_size, out_size: ``(H, W)`` of its input and output.
        source: the lineage of its input (indices into :attr:`Trace.events`).
    """

    label: str
    adaptive: bool
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    source: frozenset[int]


@dataclass
class Trace:
    """What one traced forward pass saw.

    Attributes:
        shapes: ``{path: (input shape, output shape)}`` of the first call of each module that
            took and returned a tensor (first tensor of each).
        unconverted: spatial reductions that convert does not replace, in execution order.
        merges: combinations of maps with different APS lineages, in execution order: of the
            maps larger than ``1 x 1`` (a ``1 x 1`` map beside them is a globally pooled gate),
            or of ``1 x 1`` maps where all are (a block at the end of a small input, which merges
            larger maps on a larger one).
        events: every downsampling call, in execution order (a lineage holds their indices).
        merge_lineages: per merge, the distinct lineages of the maps it combines.
    """

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    unconverted: list[UnconvertedDownsampling] = field(default_factory=list)
    merges: list[BranchMerge] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    merge_lineages: list[tuple[frozenset[int], ...]] = field(default_factory=list)


class _Tracer(TorchFunctionMode):
    """Hooks and function mode of one trace (see the module docstring).

    Event kinds: ``converted`` (a layer convert replaces), ``aps`` / ``blur`` (shiftlab
    pooling layers already in the model), ``layer`` (another built-in downsampling layer, left
    as it is) and ``functional``. Adaptive events (APS phases chosen from the data) are
    ``converted`` ones under ``downsample="aps"`` and ``aps`` ones.
    """

    def __init__(self, planned: set[str], downsample: str | None, skip: list[str],
                 analyse: bool) -> None:
        super().__init__()
        self.planned, self.downsample, self.skip = planned, downsample, skip
        self.analyse = analyse
        self.trace = Trace()
        self.frames: list[_Frame] = []
        self.lineage: WeakTensorKeyDictionary = WeakTensorKeyDictionary()
        self.spatial: WeakTensorKeyDictionary = WeakTensorKeyDictionary()  # axes (H, W) if not _NCHW
        self.found: list[UnconvertedDownsampling] = []  # in execution order, duplicates too
        self.pending: list[int] = []  # indices into found whose "before" is the next module to start
        self.last_done = "<input>"

    # ----------------------------------------------------------------- module hooks

    def _classify(self, path: str, m: nn.Module) -> tuple[bool, str | None]:
        """``(atomic, event kind if it downsamples)``; the kind of an atomic module only."""
        if not atomic(m, path in self.planned):
            return False, None
        if path in self.planned:
            return True, "converted"
        if isinstance(m, SHIFTLAB_POOLS):
            return True, "aps" if isinstance(m, (APSPool2d, MaxAPSPool2d)) else "blur"
        action, problem = plan_one(m, "blur", False)  # a built-in layer
        return True, ("layer" if action in (*DOWNSAMPLE_ACTIONS, "adaptive") or problem is not None
                      else None)

    def attach(self, model: nn.Module) -> None:
        for path, m in model.named_modules():
            whole, kind = self._classify(path, m)
            m.register_forward_pre_hook(self._pre(path, whole, kind), with_kwargs=True)
            m.register_forward_hook(self._post)

    def _pre(self, path: str, whole: bool, kind: str | None) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            nested = bool(self.frames) and (self.frames[-1].atomic or self.frames[-1].nested)
            if not nested:
                for i in self.pending:
                    self.found[i] = dataclasses.replace(self.found[i], before=path or "<model>")
                self.pending.clear()
            inputs = _tensors((args, kwargs))
            self.frames.append(_Frame(path, kind, whole, nested, self.last_done,
                                      inputs[0] if inputs else None))
        return hook

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        frame = self.frames.pop()
        outputs = _tensors(output)
        if frame.x is not None and outputs:
            self.trace.shapes.setdefault(frame.path, (tuple(frame.x.shape),
                                                      tuple(outputs[0].shape)))
        if frame.nested or not self.analyse:
            return
        self.last_done = frame.path or "<model>"
        if frame.kind is None or frame.x is None or not outputs:
            return
        hw_in, hw_out = _hw(frame.x), _hw(outputs[0])
        if hw_in is None or hw_out is None or not _reduces(
                hw_in, hw_out, to_point=frame.kind in ("converted", "aps")):
            return
        unconverted = frame.kind == "layer" or (frame.kind == "blur"
                                                and self.downsample == "aps")
        event = self._event(frame.path or "<model>", frame.kind, hw_in, hw_out,
                            type(module).__name__ if unconverted else None, frame.path,
                            frame.after, self._lineage(frame.x))
        out = outputs[0]
        self.lineage[out] = self._lineage(out) | {event}

    def _event(self, label: str, kind: str, hw_in: tuple[int, int], hw_out: tuple[int, int],
               op: str | None, path: str, after: str, source: frozenset[int]) -> int:
        """Register a downsampling event; record it as unconverted when ``op`` is given."""
        adaptive = kind == "aps" or (kind == "converted" and self.downsample == "aps")
        self.trace.events.append(Event(label, adaptive, hw_in, hw_out, source))
        if op is not None:
            self.pending.append(len(self.found))
            self.found.append(UnconvertedDownsampling(
                path, "functional" if kind == "functional" else "layer", op, hw_in, hw_out, after,
                "<output>", under(path, self.skip)))
        return len(self.trace.events) - 1

    def _lineage(self, t: Tensor) -> frozenset[int]:
        """The downsampling events ``t`` went through (none for a tensor not derived from the
        input)."""
        return self.lineage[t] if t in self.lineage else _EMPTY  # not .get: torch leaves it unannotated

    # ----------------------------------------------------------------- torch functions

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        outputs = _tensors(result)
        if not outputs:
            return result
        inputs = [t for t in _tensors((args, kwargs)) if t in self.lineage]
        if not inputs:
            return result  # parameters, buffers, constants: not derived from the input
        lineage = frozenset().union(*(self.lineage[t] for t in inputs))
        name = getattr(func, "__name__", repr(func))
        dims = self._moved_axes(func, name, args, kwargs, inputs, outputs[0])
        for t in outputs:
            if dims is not None and dims != _NCHW and t.dim() == 4:
                self.spatial[t] = dims
            elif t in self.spatial:
                del self.spatial[t]
        frame = self.frames[-1] if self.frames else None
        if frame is not None and not (frame.atomic or frame.nested):
            self._check_merge(frame.path, name, inputs)
            maps = [t for t in inputs if t.dim() == 4]
            hw_in, hw_out = (self._size(maps[0]) if maps else None), self._size(outputs[0])
            if hw_in is not None and hw_out is not None and _reduces(hw_in, hw_out):
                where = frame.path or "<model>"
                event = self._event(f"{name}() in {where}", "functional", hw_in, hw_out, name,
                                    frame.path, self.last_done, lineage)
                lineage = lineage | {event}
        for t in outputs:
            self.lineage[t] = lineage
        return result

    def _size(self, t: Tensor) -> tuple[int, int] | None:
        """``(H, W)`` of a 4-D map, wherever reorderings put those axes; None for other tensors."""
        if t.dim() != 4:
            return None
        h, w = self._axes(t)
        return int(t.shape[h]), int(t.shape[w])

    def _axes(self, t: Tensor) -> tuple[int, int]:
        """Where ``(H, W)`` are in the 4-D map ``t``: :data:`_NCHW` unless a reordering moved them."""
        return self.spatial[t] if t in self.spatial else _NCHW  # not .get: torch leaves it unannotated

    def _moved_axes(self, func: Callable[..., Any], name: str, args: tuple[Any, ...],
                    kwargs: dict[str, Any], inputs: list[Tensor], out: Tensor) -> tuple[int, int] | None:
        """The axes ``(H, W)`` of ``func``'s output: moved by a reordering of a 4-D map, kept by
        any other op on a reordered map of the output's rank; None for ``[N, C, H, W]``."""
        if name in _REORDERS and args and isinstance(args[0], Tensor) and args[0].dim() == 4:
            return _moved(func, args, kwargs, self._axes(args[0]))
        return next((self.spatial[t] for t in inputs if t in self.spatial and t.dim() == out.dim()), None)

    def _check_merge(self, path: str, op: str, inputs: list[Tensor]) -> None:
        sized = [(t, size) for t in inputs if (size := self._size(t)) is not None]
        maps = [(t, size) for t, size in sized if size[0] * size[1] > 1] or sized  # all 1 x 1: see Trace
        distinct: list[frozenset[int]] = []
        for t, _ in maps:
            if self._lineage(t) not in distinct:
                distinct.append(self._lineage(t))
        if len(distinct) < 2:
            return
        common = frozenset.intersection(*distinct)
        events = self.trace.events
        if not any(events[e].adaptive for e in frozenset().union(*distinct) - common):
            return
        branches = tuple(tuple(events[e].label for e in sorted(lin - common)) for lin in distinct)
        merge = BranchMerge(path, op, branches, maps[0][1])
        if merge not in self.trace.merges:
            self.trace.merges.append(merge)
            self.trace.merge_lineages.append(tuple(distinct))

    def finish(self) -> Trace:
        seen = set()
        for entry in self.found:
            if entry not in seen:
                seen.add(entry)
                self.trace.unconverted.append(entry)
        return self.trace


def trace(model: nn.Module, example: Any, what: str, *, source: str = "example_input",
          planned: Iterable[str] = (), downsample: str | None = None,
          skip: Iterable[str] = (), analyse: bool = False) -> Trace:
    """Run ``model`` (a hook-free eval copy, no gradients) on ``example`` and record it.

    Args:
        model: the model (not modified).
        example: a batch ``[N, C, H, W]`` or a tuple of forward arguments.
        what: ``"original"`` or ``"converted"``; ``source``: what ``example`` is (both for the
            error message).
        planned: paths of the layers convert replaces by downsampling layers.
        downsample: the conversion's ``downsample`` (decides which events are adaptive).
        skip: convert's ``skip`` paths (their findings are marked ``skipped``).
        analyse: also look for downsampling outside modules and for merges (function mode);
            otherwise only shapes are recorded.

    Raises:
        ValueError: the forward pass fails; the message names the innermost running module.
    """
    probe = hook_free_eval_copy(model)
    tracer = _Tracer(set(planned), downsample, list(skip), analyse)
    tracer.attach(probe)
    args = _args(example)
    try:
        with torch.no_grad():
            if analyse:
                for t in _tensors(args):
                    tracer.lineage[t] = _EMPTY
                with tracer:
                    probe(*args)
            else:
                probe(*args)
    except Exception as err:
        where = f" in {tracer.frames[-1].path or '<model>'}" if tracer.frames else ""
        raise ValueError(f"{source} fails on the {what} model{where}: {err}") from err
    return tracer.finish()


def invariance_check(model: nn.Module, example: Any) -> float | None:
    """Max ``|f(T_d x) - f(x)|`` over the output and the shifts :data:`INVARIANCE_SHIFTS`.

    ``x`` is the first sample of ``example`` (``[1, C, H, W]``) and ``f`` a float64 hook-free
    eval copy of ``model``; the shifted copies run in one batch ``[1 + 4, C, H, W]``. None when
    ``example`` is not one floating 4-D tensor, when the output is a map larger than ``1 x 1``
    (no global pool: nothing to be invariant), or when the float64 copy does not run.
    """
    if not (isinstance(example, Tensor) and example.dim() == 4 and example.is_floating_point()):
        return None
    x = example[:1].double()
    h, w = x.shape[-2:]
    batch = torch.cat([x, *(torch.roll(x, (dy % h, dx % w), (-2, -1))
                            for dy, dx in INVARIANCE_SHIFTS)])
    try:
        with torch.no_grad():
            outputs = _tensors(hook_free_eval_copy(model).double()(batch))
    except (RuntimeError, ValueError, TypeError):
        return None
    if not outputs or outputs[0].shape[0] != batch.shape[0]:
        return None
    y = outputs[0]
    if y.dim() == 4 and tuple(y.shape[-2:]) != (1, 1):
        return None
    return float((y[1:] - y[:1]).abs().max())
