"""MobileNetV2 with torchvision's module names (Sandler et al., *MobileNetV2: Inverted Residuals
and Linear Bottlenecks*, CVPR 2018; ``torchvision.models.mobilenetv2``).

``features.0`` is the stem ``3x3 conv stride 2 - BN - ReLU6`` (keys ``features.0.0``,
``features.0.1``), ``features.1`` ... ``features.17`` the inverted residual blocks (``.conv``: for
expansion ``t > 1`` a 1x1 expand unit, then the 3x3 depthwise unit carrying the stride, then the
1x1 linear projection and its norm; a skip where stride is 1 and widths match), ``features.18``
the ``1x1 conv - BN - ReLU6`` to 1280 channels; then a global average pool and ``classifier`` =
``Dropout - Linear`` (key ``classifier.1``). The same keys as torchvision, so a torchvision
checkpoint loads unchanged (``docs/models.md``).

Shape:
    - Input: ``(N, 3, H, W)``; total stride 32 (224 gives a ``7 x 7`` last feature map).
    - Output: ``(N, num_classes)``.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ._load import NormLayer, with_weights

__all__ = ["SETTINGS", "ConvBNActivation", "InvertedResidual", "MobileNetV2", "make_divisible", "mobilenet_v2"]

#: The inverted-residual stages: expansion ``t``, output channels ``c``, blocks ``n``, first stride ``s``.
SETTINGS: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def make_divisible(v: float, divisor: int = 8) -> int:
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never more than
    10% below ``v`` (the TensorFlow rule torchvision uses for widths under ``width_mult``)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNActivation(nn.Sequential):
    """``conv (no bias, 'same' padding) - norm - ReLU6`` as children ``0, 1, 2``, torchvision's
    ``Conv2dNormActivation``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            norm_layer(out_channels),
            nn.ReLU6(inplace=True),
        )
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """Expand (1x1, ``expand_ratio``), depthwise 3x3 (``stride``), project (1x1, linear); ``x +``
    that when ``stride == 1`` and ``inp == oup``."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNActivation(inp, hidden_dim, kernel_size=1, norm_layer=norm_layer))
        layers += [
            ConvBNActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim, norm_layer=norm_layer),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            norm_layer(oup),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2: ``classifier(flatten(adaptive_avg_pool(features(x), 1)))``.

    Args:
        num_classes: outputs of ``classifier.1``.
        width_mult: multiplies every width (rounded by :func:`make_divisible` to multiples of 8;
            the last width 1280 only grows).
        dropout: probability of ``classifier.0``.
        norm_layer: the normalisation layer, called with the channel count.

    Convs get Kaiming normal (``fan_out``), norm layers weight 1 and bias 0, ``Linear`` weights
    ``N(0, 0.01)`` and zero bias, from torch's global RNG.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        input_channel = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNActivation(3, input_channel, stride=2, norm_layer=norm_layer)]
        for t, c, n, s in SETTINGS:
            output_channel = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t, norm_layer))
                input_channel = output_channel
        features.append(ConvBNActivation(input_channel, self.last_channel, kernel_size=1, norm_layer=norm_layer))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.2, norm_layer: NormLayer = nn.BatchNorm2d) -> MobileNetV2:
    """MobileNetV2 (3,504,872 parameters with 1000 classes and ``width_mult=1``).

    Args:
        weights: a local ``torch.save`` file of a state dict (e.g. torchvision's
            ``mobilenet_v2-b0353104.pth``), loaded strictly; ``None`` keeps the random initialisation.
        num_classes, width_mult, dropout, norm_layer: as :class:`MobileNetV2`.
    """
    model = MobileNetV2(num_classes=num_classes, width_mult=width_mult, dropout=dropout, norm_layer=norm_layer)
    return with_weights(model, weights)
