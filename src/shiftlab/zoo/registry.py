"""The zoo registry: model names, builders, descriptions and :func:`build`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from shiftlab.nn import MaxAPSPool2d, MaxBlurPool2d

from .blocks import (
    NUM_STAGES,
    PADDING_MODES,
    STAGE_STRIDE,
    fc_head,
    feature_shape,
    pool_head,
    stage_widths,
    trunk,
)
from .net import ZooNet

__all__ = ["TOTAL_STRIDE", "ZOO", "ZooEntry", "build", "describe", "names"]

#: Total stride of every zoo trunk (3 stages of stride 2).
TOTAL_STRIDE = STAGE_STRIDE**NUM_STAGES


class ZooEntry(NamedTuple):
    """A registry entry: ``builder(num_classes=, in_channels=, width=, input_size=,
    padding_mode=, **kwargs) -> ZooNet``, a one-line description and the default conv
    ``padding_mode``."""

    builder: Callable[..., ZooNet]
    description: str
    default_padding_mode: str = "zeros"


def _trunk_for(
    kind: str, in_channels: int, width: int, padding_mode: str, **pool_kw: Any
) -> nn.Sequential:
    if kind == "maxpool":
        return trunk(in_channels, width, conv_stride=1, padding_mode=padding_mode,
                     pool=lambda c: nn.MaxPool2d(STAGE_STRIDE))
    if kind == "strided":
        return trunk(in_channels, width, conv_stride=STAGE_STRIDE, padding_mode=padding_mode)
    if kind == "maxblur":
        return trunk(in_channels, width, conv_stride=1, padding_mode=padding_mode,
                     pool=lambda c: MaxBlurPool2d(c, kernel_size=2, stride=STAGE_STRIDE, **pool_kw))
    if kind == "maxaps":
        return trunk(in_channels, width, conv_stride=1, padding_mode=padding_mode,
                     pool=lambda c: MaxAPSPool2d(c, kernel_size=2, stride=STAGE_STRIDE, **pool_kw))
    raise ValueError(f"unknown trunk kind {kind!r}")  # pragma: no cover (internal)


def _fc_model(kind: str, name: str) -> Callable[..., ZooNet]:
    def builder(*, num_classes: int, in_channels: int, width: int, input_size: tuple[int, int],
                padding_mode: str, hidden: int | None = None) -> ZooNet:
        h, w = input_size
        if h < TOTAL_STRIDE or w < TOTAL_STRIDE:
            raise ValueError(f"{name} needs input_size of at least {TOTAL_STRIDE}x{TOTAL_STRIDE}, "
                             f"got {h}x{w}")
        features = _trunk_for(kind, in_channels, width, padding_mode)
        c, fh, fw = feature_shape(features, in_channels, input_size)
        return ZooNet(features, fc_head(c * fh * fw, num_classes, hidden), name=name,
                      total_stride=TOTAL_STRIDE, input_size=(h, w))

    return builder


def _gap_model(kind: str, name: str, pool: str = "avg") -> Callable[..., ZooNet]:
    def builder(*, num_classes: int, in_channels: int, width: int, input_size: tuple[int, int],
                padding_mode: str) -> ZooNet:
        features = _trunk_for(kind, in_channels, width, padding_mode)
        head = pool_head(stage_widths(width)[-1], num_classes, pool)
        return ZooNet(features, head, name=name, total_stride=TOTAL_STRIDE)

    return builder


def _blurpool_gap(*, num_classes: int, in_channels: int, width: int, input_size: tuple[int, int],
                  padding_mode: str, filt_size: int = 4, pad_type: str | None = None) -> ZooNet:
    if pad_type is None:
        pad_type = "circular" if padding_mode == "circular" else "reflect"
    features = _trunk_for("maxblur", in_channels, width, padding_mode, filt_size=filt_size,
                          pad_type=pad_type)
    head = pool_head(stage_widths(width)[-1], num_classes, "avg")
    return ZooNet(features, head, name="blurpool_gap", total_stride=TOTAL_STRIDE)


def _aps_gap(*, num_classes: int, in_channels: int, width: int, input_size: tuple[int, int],
             padding_mode: str, norm: int | float | str = 2, filt_size: int = 1) -> ZooNet:
    h, w = input_size
    if h % TOTAL_STRIDE or w % TOTAL_STRIDE:
        raise ValueError(f"aps_gap needs input_size divisible by its total stride {TOTAL_STRIDE} "
                         f"(exact invariance to circular shifts holds only then), got {h}x{w}")
    features = _trunk_for("maxaps", in_channels, width, padding_mode, norm=norm,
                          filt_size=filt_size)
    head = pool_head(stage_widths(width)[-1], num_classes, "avg")
    return ZooNet(features, head, name="aps_gap", total_stride=TOTAL_STRIDE,
                  require_divisible=True)


#: name -> :class:`ZooEntry`. All models share the trunk depth (3 stages), the widths
#: ``width, 2 * width, 4 * width`` and the total stride 8; only downsampling and head differ.
ZOO: dict[str, ZooEntry] = {
    "maxpool_fc": ZooEntry(
        _fc_model("maxpool", "maxpool_fc"),
        "classic CNN: conv3x3-BN-ReLU-MaxPool2d(2) x3, flatten, fully connected head"),
    "strided_fc": ZooEntry(
        _fc_model("strided", "strided_fc"),
        "conv3x3 stride 2-BN-ReLU x3 (no pooling), flatten, fully connected head"),
    "fcn_gap": ZooEntry(
        _gap_model("strided", "fcn_gap", "avg"),
        "fully convolutional: conv3x3 stride 2-BN-ReLU x3, 1x1 conv classifier, global average pool"),
    "fcn_gmp": ZooEntry(
        _gap_model("strided", "fcn_gmp", "max"),
        "fully convolutional: conv3x3 stride 2-BN-ReLU x3, 1x1 conv classifier, global max pool"),
    "maxpool_gap": ZooEntry(
        _gap_model("maxpool", "maxpool_gap", "avg"),
        "conv3x3-BN-ReLU-MaxPool2d(2) x3, 1x1 conv classifier, global average pool"),
    "blurpool_gap": ZooEntry(
        _blurpool_gap,
        "anti-aliased (Zhang 2019): conv3x3-BN-ReLU-MaxBlurPool2d x3, 1x1 conv, global average pool"),
    "aps_gap": ZooEntry(
        _aps_gap,
        "truly shift-invariant (APS, Chaman & Dokmanic 2021): circular conv3x3-BN-ReLU-MaxAPSPool2d "
        "x3, 1x1 conv, global average pool",
        default_padding_mode="circular"),
}


def names() -> list[str]:
    """Names of the zoo models, in registry order."""
    return list(ZOO)


def _entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {names()}")
    return ZOO[name]


def describe(name: str) -> str:
    """One-line description of the zoo model ``name``."""
    return _entry(name).description


def _size_pair(input_size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                 for v in pair):
        raise ValueError(f"input_size must be a positive int or (H, W), got {input_size!r}")
    return pair  # type: ignore[return-value]


def _check_positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def build(
    name: str,
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    width: int = 16,
    input_size: int | tuple[int, int] = 32,
    padding_mode: str | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> ZooNet:
    """Build the zoo model ``name`` at random initialisation.

    All zoo models have the same trunk: 3 stages of a 3x3 conv (padding 1) and a ReLU, widths
    ``width, 2 * width, 4 * width``, each stage downsampling by 2 (total stride 8). They differ
    only in how a stage downsamples (stride-2 conv, ``MaxPool2d(2)``, ``MaxBlurPool2d``,
    ``MaxAPSPool2d``) and in the head (flatten + ``Linear``, or 1x1 conv + global pool).

    Input ``H, W`` should be divisible by the total stride 8. For ``aps_gap`` it is required
    (exact invariance to circular shifts holds only then; checked here and in ``forward``).
    Fully connected heads (``*_fc``) accept only inputs of ``input_size``; global-pool heads
    accept any size.

    Args:
        name: one of :func:`names`.
        num_classes: number of output logits.
        in_channels: input image channels.
        width: channels of the first stage.
        input_size: ``H`` (square) or ``(H, W)``: sizes the ``Linear`` layer of ``*_fc`` models;
            validated for ``aps_gap``; otherwise unused.
        padding_mode: conv ``padding_mode`` (``zeros``, ``reflect``, ``replicate``,
            ``circular``); ``None`` means the model's default (``circular`` for ``aps_gap``,
            ``zeros`` otherwise).
        seed: if given, initialise with ``torch.manual_seed(seed)`` without touching the
            global random state.
        **kwargs: model-specific options: ``hidden`` (``*_fc``: width of a hidden FC layer),
            ``filt_size``, ``pad_type`` (``blurpool_gap``; ``pad_type`` defaults to ``circular``
            with circular ``padding_mode``, else ``reflect``), ``norm``, ``filt_size``
            (``aps_gap``).

    Returns:
        a :class:`ZooNet` with ``.name``, ``.total_stride`` (8), ``.num_classes`` and
        ``.in_channels``; module paths ``features.<i>`` and ``head.<i>``.

    Raises:
        ValueError: unknown ``name`` (the message lists the names), bad sizes, ``input_size``
            not divisible by 8 for ``aps_gap``.
        TypeError: a keyword argument the model does not accept.

    Example:
        >>> model = build("fcn_gap", num_classes=10, in_channels=1, width=16)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    entry = _entry(name)
    num_classes = _check_positive(num_classes, "num_classes")
    in_channels = _check_positive(in_channels, "in_channels")
    width = _check_positive(width, "width")
    size = _size_pair(input_size)
    mode = entry.default_padding_mode if padding_mode is None else padding_mode
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {list(PADDING_MODES)}, got {mode!r}")
    accepted = [p for p, v in inspect.signature(entry.builder).parameters.items()
                if v.kind is inspect.Parameter.KEYWORD_ONLY
                and p not in ("num_classes", "in_channels", "width", "input_size", "padding_mode")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{name} got unexpected keyword argument(s) {unknown}; "
                        f"it accepts {accepted or 'none'}")
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = entry.builder(num_classes=num_classes, in_channels=in_channels, width=width,
                              input_size=size, padding_mode=mode, **kwargs)
    model.num_classes = num_classes
    model.in_channels = in_channels
    return model
