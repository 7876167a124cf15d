"""Planning and building for :func:`shiftlab.conversion.convert`: which module becomes what.

:func:`plan` walks the module tree and decides an action per module (or names why it cannot be
converted); :func:`build` makes the replacement of one planned module. The rules are stated in
the docstring of :mod:`shiftlab.conversion`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.nn.modules import padding as _padding
from torch.nn.modules import pooling as _pooling
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.nn.modules.instancenorm import _InstanceNorm

from shiftlab.nn import APSPool2d, BlurPool2d, MaxAPSPool2d, MaxBlurPool2d, aps_conv, blurred_conv, circular_pad
from shiftlab.nn.aps import Norm

SHIFTLAB_POOLS = (BlurPool2d, APSPool2d, MaxBlurPool2d, MaxAPSPool2d)
#: shiftlab's layers equal to their ``torch.nn`` base (same arguments, state_dict and outputs;
#: they pad circularly with slices the trace must not take for downsampling).
TORCH_EQUIVALENTS = (circular_pad.Conv2d, circular_pad.CircularPad2d)
#: Actions that replace a strided layer (the others only change padding).
DOWNSAMPLE_ACTIONS = ("conv", "maxpool", "avgpool")
_CIRCULAR_PADS: dict[int, type[_padding._CircularPadNd]] = {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d}


def _tup(value: Any, n: int = 2) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _pair(value: int | Iterable[int]) -> tuple[int, int]:
    """A 2-D layer's ``int | (h, w)`` argument as ``(h, w)`` (``(n,)``, which torch's 2-D layers
    take for ``(n, n)``, too)."""
    v = _tup(value)
    h, w = v * 2 if len(v) == 1 else v
    return h, w


def _strided(module: nn.Module, n: int) -> bool:
    stride = getattr(module, "stride", None)
    if stride is None:  # pools default stride to kernel_size
        stride = getattr(module, "kernel_size", 1)
    return any(s > 1 for s in _tup(stride, n))


def builtin(cls: type[nn.Module]) -> bool:
    """Whether ``cls`` is a ``torch.nn`` layer class, or one of shiftlab's that computes what its
    ``torch.nn`` base does (:data:`TORCH_EQUIVALENTS`); a subclass the user wrote is neither."""
    return cls.__module__.startswith("torch.nn.") or cls in TORCH_EQUIVALENTS


def _overrides_forward(module: nn.Module, base: type[nn.Module]) -> bool:
    return type(module).forward is not base.forward and type(module) not in TORCH_EQUIVALENTS


def _has_padding(module: nn.Module) -> bool:
    pad = getattr(module, "padding", 0)
    if isinstance(pad, str):
        return pad != "valid"
    return any(p > 0 for p in _tup(pad))


@dataclass
class Step:
    """One planned change: the module at ``path`` and what to do with it."""

    path: str
    module: nn.Module
    action: str  # conv | maxpool | avgpool | conv_pad | pool_pad | pad_layer | blur_pad | adaptive
    channels: int | None = None
    channels_from: str | None = None


# --------------------------------------------------------------------------- planning


def plan_one(
    m: nn.Module, downsample: str | None, circular: bool
) -> tuple[str | None, str | None]:
    """``(action, problem)`` for one module; at most one of them is not None."""
    down = downsample is not None
    if isinstance(m, BlurPool2d):
        return ("blur_pad" if circular and m.pad_type != "circular" else None), None
    if isinstance(m, SHIFTLAB_POOLS):
        return None, None
    if isinstance(m, _ConvTransposeNd):
        if circular and (_has_padding(m) or any(o > 0 for o in m.output_padding)
                         or any(d * (k - 1) + 1 > s for k, s, d in
                                zip(m.kernel_size, m.stride, m.dilation, strict=True))):
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
        return "adaptive", None  # refused after the trace unless the identity there (size_problems)
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
    if isinstance(m, SHIFTLAB_POOLS):
        return m.channels
    return None


def under(path: str, prefixes: Iterable[str]) -> bool:
    """Whether module ``path`` is one of ``prefixes`` or inside one (``""`` is the model)."""
    return any(path == p or path.startswith(p + ".") or p == "" for p in prefixes)


def plan(model: nn.Module, downsample: str | None, circular: bool, skip: list[str]) -> list[Step]:
    """The steps for ``model``'s module tree, in registration order; pooling steps carry the
    channel count of the last channel-defining layer registered before them (the static guess
    that a trace replaces). Raises ``ValueError`` naming every module that cannot be converted."""
    steps: list[Step] = []
    problems: list[str] = []
    replaced: list[str] = []
    last: tuple[int, str] | None = None
    for path, m in model.named_modules():
        c = _channels_of(m)
        if under(path, skip) or under(path, replaced):
            last = (c, path or "<model>") if c is not None else last
            continue
        action, problem = plan_one(m, downsample, circular)
        if problem is not None:
            problems.append(f"{path or '<model>'} ({type(m).__name__}): {problem}")
        elif action is not None:
            step = Step(path, m, action)
            if action in ("maxpool", "avgpool") and last is not None:
                step.channels, step.channels_from = last
            steps.append(step)
            if action not in ("conv_pad", "blur_pad"):  # replaced: its children are not planned
                replaced.append(path)
        if c is not None:
            last = (c, path or "<model>")
    if problems:
        raise refusal(downsample, circular, problems)
    return steps


def refusal(downsample: str | None, circular: bool, problems: list[str]) -> ValueError:
    """The error naming every layer convert cannot convert (``problems``: ``path (Type): why``)."""
    return ValueError(
        f"convert(downsample={downsample!r}, padding={'circular' if circular else None!r}) "
        f"cannot convert {len(problems)} layer(s) faithfully:\n  " + "\n  ".join(problems)
        + "\nReplace them, or pass skip=[<path>, ...] to leave them unchanged.")


def _floor_size(pool: nn.MaxPool2d | nn.AvgPool2d, size: tuple[int, int]) -> tuple[int, int]:
    """Output ``(H, W)`` of a strided 2-D pool at input ``size`` ``(H, W)`` without ``ceil_mode``."""
    k, p = _pair(pool.kernel_size), _pair(pool.padding)
    s = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    d = _pair(pool.dilation) if isinstance(pool, nn.MaxPool2d) else (1, 1)
    h, w = ((n + 2 * pi - di * (ki - 1) - 1) // si + 1 for n, ki, pi, si, di in zip(size, k, p, s, d, strict=True))
    return h, w


def size_problems(steps: Iterable[Step],
                  shapes: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> list[str]:
    """The layers among ``steps`` that convert accepts only at the traced input size, and refuses
    there: strided pools with ``ceil_mode=True`` whose traced output size (``shapes``,
    :attr:`shiftlab.conversion._trace.Trace.shapes`) is not the one without ``ceil_mode`` (which
    their replacement gives), non-global adaptive pools that are not the identity (output size =
    input size, VGG's ``AdaptiveAvgPool2d((7, 7))`` at 224 x 224), and such layers no trace reached."""
    problems = []
    for step in steps:
        m, kind = step.module, type(step.module).__name__
        pool = m if step.action in ("maxpool", "avgpool") and isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) else None
        if step.action == "adaptive":
            where = f"{step.path or '<model>'} ({kind}): non-global adaptive pool (output_size={m.output_size})"
        elif pool is not None and pool.ceil_mode:
            where = f"{step.path or '<model>'} ({kind}): strided pool with ceil_mode=True"
        else:
            continue
        if step.path not in shapes:
            problems.append(f"{where} that no trace reached (its output size may change); pass example_input=")
            continue
        before, after = ((shape[-2], shape[-1]) for shape in shapes[step.path])
        if pool is None:  # the adaptive pool
            if after != before:
                problems.append(f"{where} that changes the size at input {before[0]}x{before[1]} to "
                                f"{after[0]}x{after[1]} (it is left alone only where it is the identity)")
            continue
        floor = _floor_size(pool, before)
        if after != floor:
            problems.append(f"{where} whose output size would change at input {before[0]}x{before[1]}: "
                            f"{after[0]}x{after[1]}, {floor[0]}x{floor[1]} without ceil_mode")
    return problems


# --------------------------------------------------------------------------- building


def like(new: nn.Module, ref: Tensor | None, training: bool) -> nn.Module:
    """``new`` on ``ref``'s device and dtype, in the given train/eval mode."""
    if ref is not None:
        new.to(device=ref.device, dtype=ref.dtype)
    return new.train(training)


def reference_tensor(model: nn.Module) -> Tensor | None:
    """The first floating-point parameter or buffer of ``model`` (its device and dtype)."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t
    return None


def _circular_dense_pad(k: tuple[int, int], p: tuple[int, int], d: tuple[int, int]) -> nn.Module:
    """Circular pad ``p`` before, ``d (k - 1) - p`` after: a stride-1 op then keeps ``H x W``."""
    (kh, kw), (ph, pw), (dh, dw) = k, p, d
    return nn.CircularPad2d((pw, dw * (kw - 1) - pw, ph, dh * (kh - 1) - ph))


def _uneven_circular_pad(conv: nn.Conv2d) -> nn.Module | None:
    """For a strided conv whose stride-1 copy with circular padding ``p`` on both sides would
    not keep ``H x W`` (``2 p != d (k - 1)``: ConvNeXt's ``k = s``, ``p = 0`` patchify and
    downsampling convs, ``k = 4, p = 1``), the circular pad that does: ``p`` before, ``d (k - 1)
    - p`` after (the original's output size for ``H`` divisible by ``s``). None for the others."""
    if isinstance(conv.padding, str):
        return None
    k, p, d = _pair(conv.kernel_size), _pair(conv.padding), _pair(conv.dilation)
    if all(2 * pi == di * (ki - 1) for ki, pi, di in zip(k, p, d, strict=True)) \
            or any(pi > di * (ki - 1) for ki, pi, di in zip(k, p, d, strict=True)):
        return None
    return _circular_dense_pad(k, p, d)


def build(step: Step, downsample: str | None, circular: bool, filt_size: int, pad_type: str,
          norm: Norm = 2) -> nn.Module:
    """The replacement of ``step.module`` (the module itself when only its padding changes);
    ``norm`` is the APS selection norm (``downsample="aps"`` only). :func:`plan_one` gives each
    action to one kind of layer; the asserts below state which."""
    m, a = step.module, step.action
    if a == "conv":
        assert isinstance(m, nn.Conv2d)
        pad = _uneven_circular_pad(m) if circular else None
        if pad is not None:
            m.padding = (0, 0)
        elif circular and _has_padding(m):
            m.padding_mode = "circular"
        if downsample == "blur":
            conv_then = blurred_conv(m, filt_size, pad_type)
        else:
            conv_then = aps_conv(m, norm, filt_size, circular=circular and _has_padding(m))
        conv_copy = conv_then.get_submodule("conv")
        for name, param in m._parameters.items():  # keep the copy's parameter objects (ties)
            if param is not None:
                conv_copy._parameters[name] = param
        return conv_then if pad is None else nn.Sequential(OrderedDict([("pad", pad), *conv_then.named_children()]))
    if a == "conv_pad":
        assert isinstance(m, _ConvNd)
        m.padding_mode = "circular"
        return m
    if a == "blur_pad":
        assert isinstance(m, BlurPool2d)
        m.pad_type = "circular"
        return m
    if a == "pad_layer":
        assert isinstance(m, (_padding._ConstantPadNd, _padding._ReflectionPadNd, _padding._ReplicationPadNd))
        return _CIRCULAR_PADS[len(m.padding) // 2](m.padding)
    assert isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))  # pool_pad, maxpool, avgpool
    k, p = _pair(m.kernel_size), _pair(m.padding)
    if a == "pool_pad":
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
    s = _pair(m.stride if m.stride is not None else m.kernel_size)[0]
    if a == "maxpool":
        assert isinstance(m, nn.MaxPool2d)
        d = _pair(m.dilation)
        if downsample == "blur":
            blurred = MaxBlurPool2d(c, k[0], s, filt_size, pad_type)
            if circular:
                blurred.pool = nn.Sequential(OrderedDict([
                    ("pad", _circular_dense_pad(k, p, d)), ("pool", nn.MaxPool2d(k, 1, 0, d))]))
            elif k[0] != k[1] or p != (0, 0) or d != (1, 1):
                blurred.pool = nn.MaxPool2d(k, 1, p, d)
            return blurred
        if k[0] == k[1] and d == (1, 1):
            return MaxAPSPool2d(c, k[0], s, norm, filt_size)
        return nn.Sequential(OrderedDict([
            ("pad", _circular_dense_pad(k, (0, 0), d)), ("pool", nn.MaxPool2d(k, 1, 0, d)),
            ("aps", APSPool2d(c, s, norm, filt_size))]))
    assert a == "avgpool" and isinstance(m, nn.AvgPool2d)
    d, div = (1, 1), m.divisor_override
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


def has_hooks(m: nn.Module) -> bool:
    """Whether ``m`` has forward or backward hooks of its own."""
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                or getattr(m, "_backward_pre_hooks", None))

