"""Trunks and heads the zoo models are assembled from.

A trunk is 3 stages ``conv3x3 - BatchNorm - ReLU [- pool]`` of widths ``width, 2 * width, 4 * width``; each
stage downsamples by 2 (a stride-2 conv or a stride-2 pool), so the total stride is 8. All
trunks of one ``width`` have the same convolutions (same shapes, same parameter count); only
where and how they subsample differs (:func:`downsampling_trunk`). Heads map the ``4 * width``
channel feature map to logits (:func:`head`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, TypeGuard, get_args

import torch
from torch import nn

from shiftlab.measure.runner import measuring
from shiftlab.nn import BlurPool2d, CircularPad2d, Conv2d, LearnedPool2d, MaxAPSPool2d, MaxBlurPool2d

__all__ = [
    "DOWNSAMPLING_OPTIONS",
    "NUM_STAGES",
    "PADDING_MODES",
    "STAGE_STRIDE",
    "PaddingMode",
    "downsampling_trunk",
    "fc_head",
    "feature_shape",
    "head",
    "is_padding_mode",
    "pool_head",
    "stage_widths",
    "trunk",
]

NUM_STAGES = 3
STAGE_STRIDE = 2
#: A ``padding_mode`` that ``nn.Conv2d`` accepts (and :func:`shiftlab.zoo.build`).
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
#: The values of :data:`PaddingMode`.
PADDING_MODES: tuple[PaddingMode, ...] = get_args(PaddingMode)


def is_padding_mode(mode: object) -> TypeGuard[PaddingMode]:
    """Is ``mode`` one of :data:`PADDING_MODES`?"""
    return mode in PADDING_MODES


def stage_widths(width: int) -> list[int]:
    """Channel widths of the 3 stages: ``[width, 2 * width, 4 * width]``."""
    return [width * 2**i for i in range(NUM_STAGES)]


def trunk(
    in_channels: int,
    width: int,
    *,
    conv_stride: int,
    padding_mode: PaddingMode = "zeros",
    pool: Callable[[int], nn.Module] | None = None,
) -> nn.Sequential:
    """A flat ``nn.Sequential`` of 3 stages ``Conv2d(3x3, padding 1) - BatchNorm2d - ReLU [- pool(channels)]``.

    BatchNorm makes the small nets train in a couple of epochs on a CPU; in eval mode it is a
    per-channel affine map, so it changes no equivariance property of the trunk.

    Args:
        in_channels: input channels.
        width: channels of the first stage (then doubled per stage).
        conv_stride: stride of every conv (2 when the conv downsamples, 1 when a pool does).
        padding_mode: ``padding_mode`` of every conv.
        pool: factory ``channels -> module`` appended after each ReLU, or ``None``.

    The ReLUs are not in-place, so forward hooks see every layer's own output.
    """
    layers: list[nn.Module] = []
    cin = in_channels
    for c in stage_widths(width):
        layers.append(
            Conv2d(cin, c, 3, stride=conv_stride, padding=1, padding_mode=padding_mode)
        )
        layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU())
        if pool is not None:
            layers.append(pool(c))
        cin = c
    return nn.Sequential(*layers)


#: Model-specific ``build`` options each downsampling kind accepts (forwarded to its pool layer).
DOWNSAMPLING_OPTIONS: dict[str, tuple[str, ...]] = {
    "strided": (),
    "allconv": (),
    "maxpool": (),
    "avgpool": (),
    "blurstrided": ("filt_size", "pad_type"),
    "maxblur": ("filt_size", "pad_type"),
    "aps": ("norm", "filt_size"),
    "learned": ("filt_size", "pad_type"),
    "learnedblur": ("filt_size", "pad_type"),
}


def _blur_pad_type(padding_mode: PaddingMode, pad_type: str | None) -> str:
    """The blur follows the convs: circular with circular convs, else ``reflect`` (Zhang's default)."""
    if pad_type is not None:
        return pad_type
    return "circular" if padding_mode == "circular" else "reflect"


def _max_blur_pool(channels: int, padding_mode: PaddingMode, filt_size: int, pad_type: str) -> MaxBlurPool2d:
    """``MaxBlurPool2d(k=2, stride 2)``; with circular convs its dense max is circular too.

    Zhang's dense max ``MaxPool2d(2, stride=1)`` has no padding (``H`` becomes ``H - 1``), which
    breaks the periodicity a circular network relies on; with ``padding_mode="circular"`` the
    max is preceded by a circular pad ``(0, 1, 0, 1)`` (child ``pool`` becomes ``Sequential(pad,
    pool)``, as :func:`shiftlab.convert` does), so the map keeps ``H x W`` and the stage is
    exactly equivariant to circular shifts by multiples of 2.
    """
    layer = MaxBlurPool2d(channels, kernel_size=2, stride=STAGE_STRIDE, filt_size=filt_size,
                          pad_type=pad_type)
    if padding_mode == "circular":
        layer.pool = nn.Sequential(OrderedDict([
            ("pad", CircularPad2d((0, 1, 0, 1))), ("pool", nn.MaxPool2d(2, stride=1))]))
    return layer


def _stage_pool(downsampling: str, channels: int, padding_mode: PaddingMode, filt_size: int | None,
                pad_type: str | None, norm: Any) -> nn.Module:
    """The stride-2 pool that ends a stage of a stride-1-conv trunk of kind ``downsampling``."""
    if downsampling == "maxpool":
        return nn.MaxPool2d(STAGE_STRIDE)
    if downsampling == "avgpool":
        return nn.AvgPool2d(STAGE_STRIDE)
    if downsampling == "allconv":  # Springenberg's All-CNN: the pool becomes a learned stride-2 conv
        return nn.Sequential(Conv2d(channels, channels, 3, stride=STAGE_STRIDE, padding=1, padding_mode=padding_mode),
                             nn.BatchNorm2d(channels), nn.ReLU())
    if downsampling in ("learned", "learnedblur"):
        return LearnedPool2d(channels, stride=STAGE_STRIDE, filt_size=4 if filt_size is None else filt_size,
                             pad_type=_blur_pad_type(padding_mode, pad_type),
                             init="random" if downsampling == "learned" else "binomial")
    if downsampling == "blurstrided":
        return BlurPool2d(channels, stride=STAGE_STRIDE, filt_size=4 if filt_size is None else filt_size,
                          pad_type=_blur_pad_type(padding_mode, pad_type))
    if downsampling == "maxblur":
        return _max_blur_pool(channels, padding_mode, 4 if filt_size is None else filt_size,
                              _blur_pad_type(padding_mode, pad_type))
    if downsampling == "aps":
        return MaxAPSPool2d(channels, kernel_size=2, stride=STAGE_STRIDE, norm=norm,
                            filt_size=1 if filt_size is None else filt_size)
    raise ValueError(f"unknown downsampling {downsampling!r}")


def downsampling_trunk(
    downsampling: str,
    in_channels: int,
    width: int,
    padding_mode: PaddingMode = "zeros",
    *,
    filt_size: int | None = None,
    pad_type: str | None = None,
    norm: Any = 2,
) -> nn.Sequential:
    """The trunk of one downsampling kind (``shiftlab.zoo.DOWNSAMPLINGS``); see :func:`trunk`.

    - ``strided``: ``Conv2d(3x3, stride 2)`` per stage, no pool (Springenberg's Strided-CNN).
    - ``allconv``: ``Conv2d(3x3)``, then ``Conv2d(3x3, stride 2)``-BN-ReLU in place of the pool
      (Springenberg's All-CNN: a learned pooling; one more conv per stage).
    - ``maxpool``: ``Conv2d(3x3)``, then ``MaxPool2d(2)``.
    - ``avgpool``: ``Conv2d(3x3)``, then ``AvgPool2d(2)`` (the max's support, linear).
    - ``blurstrided``: ``Conv2d(3x3)``, then ``BlurPool2d(stride 2, filt_size 4)`` (Zhang's
      anti-aliased strided conv).
    - ``maxblur``: ``Conv2d(3x3)``, then ``MaxBlurPool2d`` (max 2x2 stride 1, blur stride 2,
      ``filt_size`` 4); see :func:`_max_blur_pool` for circular padding.
    - ``aps``: ``Conv2d(3x3)``, then ``MaxAPSPool2d`` (circular max 2x2 stride 1, adaptive
      polyphase sampling stride 2, selection ``norm``, blur ``filt_size`` 1 = none).
    - ``learned`` / ``learnedblur``: ``Conv2d(3x3)``, then ``LearnedPool2d`` (a depthwise 4x4
      stride-2 filter with the blur's padding, support and receptive field), initialised at random
      / at the binomial filter: the learned counterparts of ``blurstrided``.

    Args:
        downsampling: the kind.
        in_channels: input channels.
        width: channels of the first stage.
        padding_mode: ``padding_mode`` of every conv.
        filt_size: blur / learned filter size (default 4 for the blur and learned kinds, 1 for ``aps``).
        pad_type: blur padding (blur and learned kinds only); default ``circular`` with circular convs,
            else ``reflect``.
        norm: APS selection norm (``aps`` only).
    """
    if downsampling == "strided":
        return trunk(in_channels, width, conv_stride=STAGE_STRIDE, padding_mode=padding_mode)
    return trunk(in_channels, width, conv_stride=1, padding_mode=padding_mode,
                 pool=lambda c: _stage_pool(downsampling, c, padding_mode, filt_size, pad_type, norm))


def feature_shape(features: nn.Module, in_channels: int, size: tuple[int, int]) -> torch.Size:
    """Shape ``[C, H', W']`` of ``features``' output for one ``in_channels x H x W`` input.

    Runs one forward pass in eval mode without autograd (BatchNorm statistics stay untouched).
    """
    with measuring(features, warn=False):
        return features(torch.zeros(1, in_channels, *size))[0].shape


def fc_head(in_features: int, num_classes: int, hidden: int | None = None) -> nn.Sequential:
    """``Flatten - Linear`` (or ``Flatten - Linear - ReLU - Linear`` with a hidden layer)."""
    if hidden is None:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def pool_head(channels: int, num_classes: int, pool: str = "avg") -> nn.Sequential:
    """``Conv2d(1x1) classifier - global pool - Flatten``: invariant to any shift of its input.

    Args:
        channels: channels of the trunk's feature map.
        num_classes: output classes.
        pool: ``"avg"`` (global average pooling) or ``"max"`` (global max pooling).
    """
    if pool == "avg":
        global_pool: nn.Module = nn.AdaptiveAvgPool2d(1)
    elif pool == "max":
        global_pool = nn.AdaptiveMaxPool2d(1)
    else:
        raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
    return nn.Sequential(nn.Conv2d(channels, num_classes, 1), global_pool, nn.Flatten())


def head(kind: str, channels: int, num_classes: int, feature_hw: tuple[int, int] | None = None,
         hidden: int | None = None) -> nn.Sequential:
    """The head of one kind (``shiftlab.zoo.HEADS``) over a ``channels x H' x W'`` feature map.

    ``fc``: :func:`fc_head` over ``channels * H' * W'`` features (``feature_hw = (H', W')``
    required; ``hidden`` adds a hidden layer); ``gap`` / ``gmp``: :func:`pool_head` with global
    average / max pooling (any ``H', W'``).
    """
    if kind == "fc":
        if feature_hw is None:
            raise ValueError("a fully connected head needs feature_hw, the feature map's (H', W')")
        return fc_head(channels * feature_hw[0] * feature_hw[1], num_classes, hidden)
    return pool_head(channels, num_classes, {"gap": "avg", "gmp": "max"}[kind])
