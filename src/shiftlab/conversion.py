"""Convert a model's downsampling to anti-aliased (BlurPool) or adaptive polyphase (APS) form.

:func:`convert` returns a converted deep copy of a model and a report of every layer it
changed. It fixes the two causes of lost shift invariance/equivariance (``docs/study.md``,
"Claims", C1, C2, C4): aliasing in strided layers (``downsample=``) and non-circular borders (``padding=``).

Rules (``s`` a square integer stride > 1; ``k``, ``p``, ``d`` kernel, padding, dilation):

- ``Conv2d(stride s)`` -> ``blur``: :func:`shiftlab.nn.blurred_conv` (same conv at stride 1,
  then ``BlurPool2d(s)``); ``aps``: :func:`shiftlab.nn.aps_conv` (stride 1, then
  ``APSPool2d(s)``). The conv keeps its weights (same values, same ``requires_grad``).
- ``MaxPool2d(k, s, p, d)`` -> ``blur``: :class:`~shiftlab.nn.MaxBlurPool2d` (the max at
  stride 1 with the same ``k, p, d``, then the blur); ``aps``:
  :class:`~shiftlab.nn.MaxAPSPool2d` (circular pad, max at stride 1, APS).
- ``AvgPool2d(k, s)`` with ``k == s``, ``p == 0`` -> ``blur``: ``BlurPool2d(s)`` (Zhang's
  rule: the binomial blur replaces the box filter; with ``filt_size=k`` it *is* the avg pool
  for ``H`` divisible by ``s``). Other strided avg pools -> ``AvgPool2d(k, 1, p)`` then
  ``BlurPool2d(s)``. ``aps``: circular pad, ``AvgPool2d(k, 1)``, ``APSPool2d(s)``.

With ``padding="circular"`` every ``Conv1d/2d/3d`` with padding gets ``padding_mode="circular"``,
zero/constant/reflection/replication pad layers become ``CircularPad{1,2,3}d``, stride-1 pools
with padding pad circularly first, every :class:`~shiftlab.nn.BlurPool2d` (also inside other
shiftlab layers) gets ``pad_type="circular"``, and the dense max/avg of converted strided pools
is computed circularly (pad ``p`` before, ``d (k - 1) - p`` after, so the map keeps its size
before subsampling). With ``H, W`` divisible by the strides the network is then exactly
equivariant to circular shifts by multiples of its strides (``blur``), or exactly invariant to
every circular shift if it ends in a global pool (``aps``).

Output sizes. ``blur`` keeps every layer's output size: a stride-1 op of output size ``n``
followed by a blur of output size ``ceil(n / s)`` gives ``floor((n - 1) / s) + 1``, the size of
the strided op, for convolutions, max pools (any ``k, p, d``) and avg pools with ``k != s`` or
``p > 0``. Exceptions: an avg pool with ``k == s``, ``p == 0`` gives ``ceil(H / s)`` instead
of ``floor(H / s)`` (equal for ``H`` divisible by ``s``); with ``padding="circular"`` a strided
pool gives ``ceil(H / s)``, and ``aps`` pools give ``H / s``; for ``H`` divisible by ``s``
that is the original size iff ``0 < k' - 2 p <= s`` with ``k' = d (k - 1) + 1`` (true for
``MaxPool2d(2)`` and ``MaxPool2d(3, 2, padding=1)``, false for ``MaxPool2d(3, 2)``). ``aps``
needs ``H, W`` divisible by ``s`` at every APS layer: a strided conv whose stride-1 output
``H + 2 p - d (k - 1)`` is not divisible by ``s`` (e.g. ``k=4, p=1, s=2``) fails at run time;
when it runs, its output size is the original one. Pass ``example_input`` to have all this
checked at conversion time (a warning lists changed output shapes, an error names the layer
that fails).

Channels. :class:`~shiftlab.nn.BlurPool2d` and :class:`~shiftlab.nn.APSPool2d` are built for a
channel count (and check it at run time), which a pooling layer does not know. With
``example_input`` it is measured by one dry-run forward of a hook-free deep copy in eval mode
(exact; running statistics of the model are untouched). Without it, it is inferred statically
from the last channel-defining layer (conv ``out_channels``, norm ``num_features``, ...) that
precedes the pool in module registration order. A wrong static guess cannot go unnoticed: the
layer raises on the first forward; a pool with no preceding such layer is rejected.

Not converted (a ``ValueError`` lists every offending module path; pass ``skip=`` to leave
them, and everything under them, as they are): strided pools with ``ceil_mode=True`` or
``return_indices=True``, non-square strides, subclasses of ``Conv2d``/``MaxPool2d``/``AvgPool2d``
that override ``forward``, strided 1-D/3-D convs and pools, ``LPPool``, ``FractionalMaxPool``,
non-global adaptive pools, ``PixelUnshuffle``, strided ``Unfold``, downscaling ``Upsample``; with
``padding="circular"`` also ``ConvTranspose`` layers that pad or overlap (no circular mode).
Upsampling layers (``Upsample``, strided ``ConvTranspose``, ``PixelShuffle``) are left alone: they
are equivariant to every shift (``T_d -> T_{s d}``) and do not alias. Downsampling done with
functional calls inside ``forward`` (``F.max_pool2d``, ``x[..., ::2, ::2]``) cannot be seen or
converted. In networks whose branches subsample separately before they are merged (residual
shortcuts with a strided 1x1 conv), APS layers choose their phases independently, so exact
invariance is not guaranteed there.

Hooks: the copy keeps the model's hooks; hooks on a replaced pooling layer are lost (a warning
says which), hooks on a converted conv stay on its stride-1 copy.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import padding as _padding
from torch.nn.modules import pooling as _pooling
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.instancenorm import _InstanceNorm

from shiftlab.nn import (
    PAD_TYPES,
    APSPool2d,
    BlurPool2d,
    MaxAPSPool2d,
    MaxBlurPool2d,
    aps_conv,
    blurred_conv,
)

__all__ = [
    "DOWNSAMPLE_METHODS",
    "ConversionEntry",
    "ConversionReport",
    "ConversionResult",
    "convert",
]

#: Accepted values of ``convert(..., downsample=)`` (``None`` leaves strided layers alone).
DOWNSAMPLE_METHODS = ("blur", "aps")
_SHIFTLAB_POOLS = (BlurPool2d, APSPool2d, MaxBlurPool2d, MaxAPSPool2d)
_CIRCULAR_PADS = {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d}


# --------------------------------------------------------------------------- results


def _oneline(module: nn.Module) -> str:
    return " ".join(repr(module).split())


def _kind(module: nn.Module) -> str:
    """``Conv2d``; ``Conv2d+BlurPool2d`` for a plain ``Sequential``."""
    if type(module) is nn.Sequential:
        return "+".join(_kind(m) for m in module)
    return type(module).__name__


@dataclass
class ConversionEntry:
    """One changed layer.

    Attributes:
        path: module path in the model (``""`` for the model itself).
        change: ``"downsample"`` (a strided layer replaced) or ``"padding"`` (made circular).
        old_kind, new_kind: class names (``new_kind`` joins a ``Sequential``'s children by ``+``).
        old, new: one-line reprs.
        channels: channel count given to a new BlurPool/APS layer built for a pool, else None.
        channels_from: ``"example_input"`` or the path of the layer it was inferred from.
        old_shape, new_shape: the layer's output shape on ``example_input`` before and after
            (None without ``example_input``).
    """

    path: str
    change: str
    old_kind: str
    new_kind: str
    old: str
    new: str
    channels: int | None = None
    channels_from: str | None = None
    old_shape: tuple[int, ...] | None = None
    new_shape: tuple[int, ...] | None = None

    @property
    def shape_changed(self) -> bool:
        return None not in (self.old_shape, self.new_shape) and self.old_shape != self.new_shape

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("old_shape", "new_shape"):
            d[key] = None if d[key] is None else list(d[key])
        return d


@dataclass
class ConversionReport:
    """What :func:`convert` changed: ``entries`` in module order, and the options used."""

    downsample: str | None
    padding: str | None
    options: dict[str, Any] = field(default_factory=dict)
    entries: list[ConversionEntry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def counts(self) -> dict[str, int]:
        """Number of changed layers per ``"old_kind -> new_kind"`` (downsampling changes) or
        ``"old_kind: circular padding"`` (padding changes that keep the layer)."""
        out: dict[str, int] = {}
        for e in self.entries:
            if e.change == "padding" and e.old_kind == e.new_kind:
                key = f"{e.old_kind}: circular padding"
            else:
                key = f"{e.old_kind} -> {e.new_kind}"
            out[key] = out.get(key, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "downsample": self.downsample,
            "padding": self.padding,
            "options": dict(self.options),
            "counts": self.counts(),
            "entries": [e.to_dict() for e in self.entries],
        }

    def __str__(self) -> str:
        head = (f"convert(downsample={self.downsample!r}, padding={self.padding!r}): "
                f"{len(self.entries)} layer(s) changed")
        if not self.entries:
            return head
        rows = [("path", "change", "old", "new")]
        for e in self.entries:
            new = e.new_kind + ("" if e.channels is None else f"[{e.channels}ch]")
            if e.shape_changed:
                new += f" (shape {e.old_shape} -> {e.new_shape})"
            rows.append((e.path or "<model>", e.change, _clip(e.old, 48), new))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows]
        return "\n".join([head, *lines])


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


@dataclass
class ConversionResult:
    """The converted copy and its report; unpacks as ``model, report = convert(...)``."""

    model: nn.Module
    report: ConversionReport

    def __iter__(self) -> Iterator[Any]:
        yield self.model
        yield self.report


# --------------------------------------------------------------------------- planning


def _tup(value: Any, n: int = 2) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _strided(module: nn.Module, n: int) -> bool:
    stride = getattr(module, "stride", None)
    if stride is None:  # pools default stride to kernel_size
        stride = getattr(module, "kernel_size", 1)
    return any(s > 1 for s in _tup(stride, n))


def _overrides_forward(module: nn.Module, base: type[nn.Module]) -> bool:
    return type(module).forward is not base.forward


def _has_padding(module: nn.Module) -> bool:
    pad = getattr(module, "padding", 0)
    if isinstance(pad, str):
        return pad != "valid"
    return any(p > 0 for p in _tup(pad))


@dataclass
class _Step:
    path: str
    module: nn.Module
    action: str  # conv | maxpool | avgpool | conv_pad | pool_pad | pad_layer | blur_pad
    channels: int | None = None
    channels_from: str | None = None


def _plan_one(
    m: nn.Module, downsample: str | None, circular: bool
) -> tuple[str | None, str | None]:
    """``(action, problem)`` for one module; at most one of them is not None."""
    down = downsample is not None
    if isinstance(m, BlurPool2d):
        return ("blur_pad" if circular and m.pad_type != "circular" else None), None
    if isinstance(m, _SHIFTLAB_POOLS):
        return None, None
    if isinstance(m, _ConvTransposeNd):
        if circular and (_has_padding(m) or any(o > 0 for o in m.output_padding)
                         or any(d * (k - 1) + 1 > s for k, s, d in
                                zip(m.kernel_size, m.stride, m.dilation))):
            return None, "ConvTranspose pads or overlaps and has no circular padding mode"
        return None, None
    if isinstance(m, nn.Conv2d):
        if down and _strided(m, 2):
            if _overrides_forward(m, nn.Conv2d):
                return None, "strided Conv2d subclass that overrides forward"
            if m.stride[0] != m.stride[1]:
                return None, f"non-square stride {tuple(m.stride)}"
            return "conv", None
        return ("conv_pad" if circular and _has_padding(m) and m.padding_mode != "circular"
                else None), None
    if isinstance(m, _ConvNd):  # Conv1d / Conv3d
        if down and _strided(m, len(m.kernel_size)):
            return None, "strided 1-D/3-D convolution (only 2-D downsampling is converted)"
        return ("conv_pad" if circular and _has_padding(m) and m.padding_mode != "circular"
                else None), None
    for cls, base, name in ((nn.MaxPool2d, nn.MaxPool2d, "maxpool"),
                            (nn.AvgPool2d, nn.AvgPool2d, "avgpool")):
        if isinstance(m, cls):
            if not _strided(m, 2):
                return ("pool_pad" if circular and _has_padding(m) else None), None
            if not down:
                return None, None
            if _overrides_forward(m, base):
                return None, f"strided {base.__name__} subclass that overrides forward"
            if m.ceil_mode:
                return None, "strided pool with ceil_mode=True (output size would change)"
            if getattr(m, "return_indices", False):
                return None, "MaxPool2d with return_indices=True (indices have no equivalent)"
            stride = _tup(m.stride if m.stride is not None else m.kernel_size)
            if stride[0] != stride[1]:
                return None, f"non-square stride {stride}"
            return name, None
    if not down:
        if isinstance(m, (_padding._ConstantPadNd, _padding._ReflectionPadNd,
                          _padding._ReplicationPadNd)) and circular:
            return "pad_layer", None
        return None, None
    if isinstance(m, (nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)):
        return None, "fractional max-pooling (random, not shift equivariant)"
    if isinstance(m, _pooling._LPPoolNd):
        return (None, "strided LPPool") if _strided(m, 1) else (None, None)
    if isinstance(m, (_pooling._MaxPoolNd, _pooling._AvgPoolNd)):  # 1-D / 3-D
        return (None, "strided 1-D/3-D pool") if _strided(m, 1) else (None, None)
    if isinstance(m, (_pooling._AdaptiveAvgPoolNd, _pooling._AdaptiveMaxPoolNd)):
        size = _tup(m.output_size, 1)
        if all(v == 1 for v in size):
            return None, None
        return None, f"non-global adaptive pool (output_size={m.output_size})"
    if isinstance(m, nn.PixelUnshuffle):
        return None, "PixelUnshuffle (space-to-depth downsampling)"
    if isinstance(m, nn.Unfold) and any(s > 1 for s in _tup(m.stride)):
        return None, "strided Unfold"
    if isinstance(m, nn.Upsample) and m.scale_factor is not None and any(
            f < 1 for f in _tup(m.scale_factor, 1)):
        return None, "Upsample with scale_factor < 1 (downscaling)"
    if circular and isinstance(m, (_padding._ConstantPadNd, _padding._ReflectionPadNd,
                                   _padding._ReplicationPadNd)):
        return "pad_layer", None
    return None, None


def _channels_of(m: nn.Module) -> int | None:
    if isinstance(m, _ConvNd):
        return m.out_channels
    if isinstance(m, (_BatchNorm, _InstanceNorm)):
        return m.num_features
    if isinstance(m, nn.GroupNorm):
        return m.num_channels
    if isinstance(m, _SHIFTLAB_POOLS):
        return m.channels
    return None


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") or p == "" for p in prefixes)


def _plan(model: nn.Module, downsample: str | None, circular: bool,
          skip: list[str]) -> list[_Step]:
    steps: list[_Step] = []
    problems: list[str] = []
    replaced: list[str] = []
    last: tuple[int, str] | None = None
    for path, m in model.named_modules():
        c = _channels_of(m)
        if _under(path, skip) or _under(path, replaced):
            last = (c, path or "<model>") if c is not None else last
            continue
        action, problem = _plan_one(m, downsample, circular)
        if problem is not None:
            problems.append(f"{path or '<model>'} ({type(m).__name__}): {problem}")
        elif action is not None:
            step = _Step(path, m, action)
            if action in ("maxpool", "avgpool") and last is not None:
                step.channels, step.channels_from = last
            steps.append(step)
            if action not in ("conv_pad", "blur_pad"):
                replaced.append(path)
        if c is not None:
            last = (c, path or "<model>")
    if problems:
        raise ValueError(
            f"convert(downsample={downsample!r}, padding={'circular' if circular else None!r}) "
            f"cannot convert {len(problems)} layer(s) faithfully:\n  " + "\n  ".join(problems)
            + "\nReplace them, or pass skip=[<path>, ...] to leave them unchanged.")
    return steps


# --------------------------------------------------------------------------- dry runs


def _hook_free_eval_copy(model: nn.Module) -> nn.Module:
    probe = copy.deepcopy(model)
    for m in probe.modules():
        m._forward_hooks.clear()
        m._forward_pre_hooks.clear()
    return probe.eval()


def _run(model: nn.Module, example_input: Any) -> None:
    args = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    with torch.no_grad():
        model(*args)


def _record_shapes(model: nn.Module, paths: list[str], example_input: Any,
                   what: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Run a hook-free eval copy; ``{path: (input shape, output shape)}`` for executed paths."""
    probe = _hook_free_eval_copy(model)
    modules = dict(probe.named_modules())
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    running: list[str] = []

    def pre(path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            running.append(path)
        return hook

    def post(path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            running.pop()
            if args and isinstance(args[0], Tensor) and isinstance(out, Tensor):
                shapes.setdefault(path, (tuple(args[0].shape), tuple(out.shape)))
        return hook

    for path in paths:
        if path in modules:
            modules[path].register_forward_pre_hook(pre(path))
            modules[path].register_forward_hook(post(path))
    try:
        _run(probe, example_input)
    except Exception as err:
        where = f" in {running[-1] or '<model>'}" if running else ""
        raise ValueError(f"example_input fails on the {what} model{where}: {err}") from err
    return shapes


# --------------------------------------------------------------------------- building


def _like(new: nn.Module, ref: Tensor | None, training: bool) -> nn.Module:
    if ref is not None:
        new.to(device=ref.device, dtype=ref.dtype)
    return new.train(training)


def _reference_tensor(model: nn.Module) -> Tensor | None:
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t
    return None


def _circular_dense_pad(k: tuple[int, ...], p: tuple[int, ...], d: tuple[int, ...]) -> nn.Module:
    """Circular pad ``p`` before, ``d (k - 1) - p`` after: a stride-1 op then keeps ``H x W``."""
    (kh, kw), (ph, pw), (dh, dw) = k, p, d
    return nn.CircularPad2d((pw, dw * (kw - 1) - pw, ph, dh * (kh - 1) - ph))


def _build(step: _Step, downsample: str | None, circular: bool, filt_size: int, pad_type: str,
           norm: Any) -> nn.Module:
    m, a = step.module, step.action
    if a == "conv":
        if circular and _has_padding(m):
            m.padding_mode = "circular"
        if downsample == "blur":
            new = blurred_conv(m, filt_size, pad_type)
        else:
            new = aps_conv(m, norm, filt_size, circular=circular and _has_padding(m))
        for name, param in m._parameters.items():  # keep the copy's parameter objects (ties)
            if param is not None:
                new.conv._parameters[name] = param
        return new
    if a == "conv_pad":
        m.padding_mode = "circular"
        return m
    if a == "blur_pad":
        m.pad_type = "circular"
        return m
    if a == "pad_layer":
        return _CIRCULAR_PADS[len(m.padding) // 2](m.padding)
    if a == "pool_pad":
        k, p = _tup(m.kernel_size), _tup(m.padding)
        pad = nn.CircularPad2d((p[1], p[1], p[0], p[0]))
        if isinstance(m, nn.MaxPool2d):
            pool: nn.Module = nn.MaxPool2d(k, 1, 0, m.dilation, ceil_mode=m.ceil_mode)
        else:
            pool = nn.AvgPool2d(k, 1, 0, ceil_mode=m.ceil_mode,
                                divisor_override=m.divisor_override)
        return nn.Sequential(OrderedDict([("pad", pad), ("pool", pool)]))
    # strided 2-D pools
    c = step.channels
    assert c is not None
    k, p = _tup(m.kernel_size), _tup(m.padding)
    s = _tup(m.stride if m.stride is not None else m.kernel_size)[0]
    d = _tup(m.dilation) if a == "maxpool" else (1, 1)
    if a == "maxpool":
        if downsample == "blur":
            new = MaxBlurPool2d(c, k[0], s, filt_size, pad_type)
            if circular:
                new.pool = nn.Sequential(OrderedDict([
                    ("pad", _circular_dense_pad(k, p, d)), ("pool", nn.MaxPool2d(k, 1, 0, d))]))
            elif k[0] != k[1] or p != (0, 0) or d != (1, 1):
                new.pool = nn.MaxPool2d(k, 1, p, d)
            return new
        if k[0] == k[1] and d == (1, 1):
            return MaxAPSPool2d(c, k[0], s, norm, filt_size)
        return nn.Sequential(OrderedDict([
            ("pad", _circular_dense_pad(k, (0, 0), d)), ("pool", nn.MaxPool2d(k, 1, 0, d)),
            ("aps", APSPool2d(c, s, norm, filt_size))]))
    # avgpool
    div = m.divisor_override
    if downsample == "blur":
        if k == (s, s) and p == (0, 0) and div is None:
            return BlurPool2d(c, s, filt_size, pad_type)
        if circular:
            dense: nn.Module = nn.Sequential(OrderedDict([
                ("pad", _circular_dense_pad(k, p, d)),
                ("pool", nn.AvgPool2d(k, 1, 0, divisor_override=div))]))
        else:
            dense = nn.AvgPool2d(k, 1, p, count_include_pad=m.count_include_pad,
                                 divisor_override=div)
        return nn.Sequential(OrderedDict([("pool", dense),
                                          ("blur", BlurPool2d(c, s, filt_size, pad_type))]))
    return nn.Sequential(OrderedDict([
        ("pad", _circular_dense_pad(k, (0, 0), d)),
        ("pool", nn.AvgPool2d(k, 1, 0, divisor_override=div)),
        ("aps", APSPool2d(c, s, norm, filt_size))]))


def _has_hooks(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or getattr(m, "_backward_pre_hooks", None))


# --------------------------------------------------------------------------- API


def convert(
    model: nn.Module,
    downsample: str | None = "blur",
    padding: str | None = None,
    *,
    filt_size: int | None = None,
    pad_type: str | None = None,
    norm: int | float | str = 2,
    example_input: Tensor | tuple[Any, ...] | None = None,
    skip: Iterable[str] = (),
) -> ConversionResult:
    """Return a deep copy of ``model`` with anti-aliased or APS downsampling and a report.

    See the module docstring for the exact rules, output sizes and what is rejected.
    ``model`` itself is not modified (parameters, buffers, train/eval modes, hooks,
    ``requires_grad``); the copy keeps the trained weights (a converted conv holds the same
    values), so it can be evaluated or fine-tuned as is.

    Args:
        model: any module tree (Sequential, ModuleList, ModuleDict, custom modules, residual
            branches, modules shared between paths; the model itself may be a single layer).
        downsample: ``"blur"`` (BlurPool, Zhang 2019), ``"aps"`` (adaptive polyphase sampling,
            Chaman & Dokmanic 2021) or ``None`` (leave strided layers alone, e.g. to only make
            padding circular).
        padding: ``None`` (keep borders) or ``"circular"`` (see the module docstring).
        filt_size: binomial filter size 1..7; default 4 for ``blur``, 1 (no blur) for ``aps``.
        pad_type: BlurPool border handling (``blur`` only): ``reflect``, ``replicate``,
            ``zeros``, ``circular``; default ``circular`` with ``padding="circular"``, else
            ``reflect``. APS always pads circularly.
        norm: APS selection norm (``aps`` only): 1, 2 or ``inf``.
        example_input: a batch (or a tuple of forward arguments) used for one dry run of a
            hook-free eval copy before and after conversion: measures the channels of pooling
            layers, checks that the converted model runs (an error names the failing layer)
            and records each changed layer's output shape (a warning lists changed shapes).
        skip: module paths left unchanged and unchecked, with everything under them.

    Returns:
        :class:`ConversionResult` with ``.model`` (the converted copy, same train/eval mode,
        device and dtype) and ``.report`` (:class:`ConversionReport`); it unpacks as
        ``model, report``.

    Raises:
        ValueError: unknown options, or layers that cannot be converted faithfully (the
            message names every offending module path), or ``example_input`` failing.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        ...                     nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
        >>> new, report = convert(net, "aps", "circular")
        >>> report.counts()
        {'Conv2d -> Conv2d+APSPool2d': 1, 'MaxPool2d -> MaxAPSPool2d': 1}
        >>> x = torch.randn(2, 1, 16, 16)
        >>> torch.allclose(new(x), new(torch.roll(x, (3, 5), (-2, -1))), atol=1e-6)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if downsample not in (*DOWNSAMPLE_METHODS, None):
        raise ValueError(f"downsample must be one of {[*DOWNSAMPLE_METHODS, None]}, "
                         f"got {downsample!r}")
    if padding not in (None, "circular"):
        raise ValueError(f"padding must be None or 'circular', got {padding!r}")
    circular = padding == "circular"
    if downsample == "aps" and pad_type is not None:
        raise ValueError("pad_type applies to downsample='blur' only (APS pads circularly)")
    filt = filt_size if filt_size is not None else (1 if downsample == "aps" else 4)
    ptype = pad_type if pad_type is not None else ("circular" if circular else "reflect")
    if ptype not in PAD_TYPES:
        raise ValueError(f"pad_type must be one of {sorted(PAD_TYPES)}, got {ptype!r}")
    BlurPool2d(1, 2, filt, ptype)  # validates filt_size
    APSPool2d(1, 2, norm, filt)  # validates norm
    skip = [skip] if isinstance(skip, str) else list(skip)
    options: dict[str, Any] = {"filt_size": filt, "norm": norm if downsample == "aps" else None,
                               "pad_type": ptype if downsample == "blur" else None,
                               "skip": skip, "example_input": example_input is not None}
    if isinstance(norm, float) and norm == float("inf"):
        options["norm"] = "inf"

    work = copy.deepcopy(model)
    steps = _plan(work, downsample, circular, skip)
    pools = [s for s in steps if s.action in ("maxpool", "avgpool")]
    before: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    if example_input is not None:
        before = _record_shapes(work, [s.path for s in steps], example_input, "original")
        for s in pools:
            if s.path in before:
                s.channels, s.channels_from = before[s.path][0][1], "example_input"
    missing = [s.path or "<model>" for s in pools if s.channels is None]
    if missing:
        raise ValueError(
            f"cannot tell the channel count of pooling layer(s) {missing}: no channel-defining "
            f"layer precedes them and example_input did not reach them; pass example_input=")

    ref = _reference_tensor(work)
    replacements: dict[int, nn.Module] = {}
    entries: list[ConversionEntry] = []
    lost_hooks: list[str] = []
    for s in steps:
        old_repr, old_kind = _oneline(s.module), type(s.module).__name__
        own = next(iter([*s.module.parameters(), *s.module.buffers()]), None)
        training, hooked = s.module.training, _has_hooks(s.module)
        new = _like(_build(s, downsample, circular, filt, ptype, norm),
                    own if own is not None and own.is_floating_point() else ref, training)
        if new is not s.module:
            replacements[id(s.module)] = new
            if hooked and s.action != "conv":
                lost_hooks.append(s.path or "<model>")
        change = "downsample" if s.action in ("conv", "maxpool", "avgpool") else "padding"
        entries.append(ConversionEntry(
            s.path, change, old_kind, _kind(new), old_repr, _oneline(new), s.channels,
            s.channels_from, before.get(s.path, (None, None))[1]))

    root = replacements.get(id(work), work)
    for m in list(root.modules()):
        for name, child in list(m._modules.items()):
            if child is not None and id(child) in replacements:
                m._modules[name] = replacements[id(child)]

    if example_input is not None and entries:
        after = _record_shapes(root, [e.path for e in entries], example_input, "converted")
        for e in entries:
            e.new_shape = after.get(e.path, (None, None))[1]
        changed = [f"{e.path or '<model>'}: {e.old_shape} -> {e.new_shape}"
                   for e in entries if e.shape_changed]
        if changed:
            warnings.warn("convert changed the output shape of " + "; ".join(changed),
                          stacklevel=2)
    if lost_hooks:
        warnings.warn(f"convert replaced layers that had hooks (not carried over): {lost_hooks}",
                      stacklevel=2)
    report = ConversionReport(downsample, padding, options, entries)
    return ConversionResult(root, report)
