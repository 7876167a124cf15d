"""VGG-11 and VGG-16, with and without batch norm, with torchvision's module names (Simonyan &
Zisserman, *Very Deep Convolutional Networks for Large-Scale Image Recognition*, ICLR 2015,
configurations A and D; ``torchvision.models.vgg``).

``features`` is one ``nn.Sequential`` of ``3x3 conv (padding 1) [- BatchNorm] - ReLU`` units and
five ``MaxPool2d(2, 2)``; ``avgpool`` is ``AdaptiveAvgPool2d((7, 7))``; ``classifier`` is
``Linear(25088, 4096) - ReLU - Dropout - Linear(4096, 4096) - ReLU - Dropout - Linear(4096,
num_classes)``. The indices inside ``features`` and ``classifier`` are torchvision's, so a
torchvision checkpoint loads unchanged (``docs/models.md``).

Shape:
    - Input: ``(N, 3, H, W)``, ``H, W >= 32`` (total stride 32). At 224 the last feature map is
      ``7 x 7``; a smaller one is resized to ``7 x 7`` by the adaptive pool (replicated at 32).
    - Output: ``(N, num_classes)``.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ._load import with_weights

__all__ = ["CONFIGS", "VGG", "make_features", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

#: Output channels of each 3x3 conv, ``"M"`` for a 2x2 max pool: VGG-11 (A) and VGG-16 (D).
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def make_features(config: list[int | str], batch_norm: bool = False) -> nn.Sequential:
    """The conv trunk of a VGG configuration (:data:`CONFIGS`), RGB input."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(v, int)
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision's VGG: ``classifier(flatten(avgpool(features(x))))``.

    Args:
        features: the conv trunk (:func:`make_features`), 512 output channels.
        num_classes: outputs of the last ``Linear``.
        dropout: probability of both ``Dropout`` layers.

    Convs get Kaiming normal (``fan_out``, ReLU gain) and zero bias, BatchNorm weight 1 and bias
    0, ``Linear`` weights ``N(0, 0.01)`` and zero bias, from torch's global RNG.
    """

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _vgg(config: str, batch_norm: bool, weights: str | os.PathLike[str] | None, num_classes: int, dropout: float) -> VGG:
    return with_weights(VGG(make_features(CONFIGS[config], batch_norm), num_classes, dropout), weights)


def vgg11(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A; 132,863,336 parameters with 1000 classes).

    Args:
        weights: a local ``torch.save`` file of a state dict (e.g. torchvision's
            ``vgg11-8a719046.pth``), loaded strictly; ``None`` keeps the random initialisation.
        num_classes, dropout: as :class:`VGG`.
    """
    return _vgg("A", False, weights, num_classes, dropout)


def vgg11_bn(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 with BatchNorm after every conv (132,868,840 parameters). Arguments as :func:`vgg11`."""
    return _vgg("A", True, weights, num_classes, dropout)


def vgg16(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D; 138,357,544 parameters). Arguments as :func:`vgg11`."""
    return _vgg("D", False, weights, num_classes, dropout)


def vgg16_bn(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 with BatchNorm after every conv (138,365,992 parameters). Arguments as :func:`vgg11`."""
    return _vgg("D", True, weights, num_classes, dropout)
