"""Trunks and heads the zoo models are assembled from.

A trunk is 3 stages ``conv3x3 - BatchNorm - ReLU [- pool]`` of widths ``width, 2 * width, 4 * width``; each
stage downsamples by 2 (a stride-2 conv or a stride-2 pool), so the total stride is 8. All
trunks of one ``width`` have the same convolutions (same shapes, same parameter count); only
where and how they subsample differs. Heads map the ``4 * width`` channel feature map to logits.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "NUM_STAGES",
    "PADDING_MODES",
    "STAGE_STRIDE",
    "fc_head",
    "feature_shape",
    "pool_head",
    "stage_widths",
    "trunk",
]

NUM_STAGES = 3
STAGE_STRIDE = 2
#: ``padding_mode`` values accepted by ``nn.Conv2d`` (and by :func:`shiftlab.zoo.build`).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def stage_widths(width: int) -> list[int]:
    """Channel widths of the 3 stages: ``[width, 2 * width, 4 * width]``."""
    return [width * 2**i for i in range(NUM_STAGES)]


def trunk(
    in_channels: int,
    width: int,
    *,
    conv_stride: int,
    padding_mode: str = "zeros",
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
            nn.Conv2d(cin, c, 3, stride=conv_stride, padding=1, padding_mode=padding_mode)
        )
        layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU())
        if pool is not None:
            layers.append(pool(c))
        cin = c
    return nn.Sequential(*layers)


@torch.no_grad()
def feature_shape(features: nn.Module, in_channels: int, size: tuple[int, int]) -> torch.Size:
    """Shape ``[C, H', W']`` of ``features``' output for one ``in_channels x H x W`` input."""
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
