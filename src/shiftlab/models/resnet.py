"""ResNet-18, -34 and -50 with torchvision's module names (He et al., *Deep Residual Learning
for Image Recognition*, CVPR 2016; ``torchvision.models.resnet``).

The definition is torchvision's, module for module: ``conv1`` (7x7 stride 2), ``bn1``, ``relu``,
``maxpool`` (3x3 stride 2, padding 1), ``layer1`` ... ``layer4`` (stride 1, 2, 2, 2; the first
block of a stage that changes stride or width has a ``downsample`` skip ``1x1 conv, norm``, keys
``downsample.0`` / ``downsample.1``), ``avgpool`` (adaptive, 1x1) and ``fc``. The Bottleneck
puts the stride on its 3x3 conv (``conv2``), torchvision's "ResNet v1.5", not the paper's first
1x1 conv. So ``state_dict()`` has torchvision's keys and shapes and a torchvision checkpoint
loads unchanged (``docs/models.md``).

Shape:
    - Input: ``(N, 3, H, W)``; the total stride is 32 (``H, W >= 32`` keeps every stage
      non-empty; 224 gives a ``7 x 7`` last feature map).
    - Output: ``(N, num_classes)``.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ._load import NormLayer, with_weights

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a skip: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x))``.

    ``conv1`` and ``downsample`` (when given) carry the stride; ``planes`` output channels.
    """

    expansion: int = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)  # the skip runs after the branch, as in torchvision
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride, v1.5), 1x1 expand to ``4 * planes``, plus the skip."""

    expansion: int = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet: stem, four stages of ``block``, global average pool, ``fc``.

    Args:
        block: :class:`BasicBlock` (ResNet-18/34) or :class:`Bottleneck` (ResNet-50).
        layers: blocks per stage, e.g. ``[2, 2, 2, 2]`` for ResNet-18.
        num_classes: outputs of ``fc``.
        zero_init_residual: set the last norm layer's weight of every residual branch to zero,
            so that each block starts as the identity (Goyal et al. 2017), as torchvision does.
        norm_layer: the normalisation layer, called with the channel count.

    Convs are initialised with Kaiming normal (``fan_out``, ReLU gain), norm layers with weight 1
    and bias 0, ``fc`` with PyTorch's default, all from torch's global RNG (``torch.manual_seed``
    makes it repeatable), in torchvision's order.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers gives the blocks of the 4 stages, got {layers}")
        self._norm_layer = norm_layer
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                last = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
                weight = getattr(last, "weight", None)
                if isinstance(weight, Tensor):
                    nn.init.constant_(weight, 0)

    def _make_layer(self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                       self._norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self._norm_layer)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, norm_layer=self._norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet(block: type[BasicBlock | Bottleneck], layers: list[int], weights: str | os.PathLike[str] | None,
            num_classes: int, zero_init_residual: bool, norm_layer: NormLayer) -> ResNet:
    model = ResNet(block, layers, num_classes=num_classes, zero_init_residual=zero_init_residual, norm_layer=norm_layer)
    return with_weights(model, weights)


def resnet18(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, zero_init_residual: bool = False,
             norm_layer: NormLayer = nn.BatchNorm2d) -> ResNet:
    """ResNet-18 (BasicBlock, ``[2, 2, 2, 2]``; 11,689,512 parameters with 1000 classes).

    Args:
        weights: a local ``torch.save`` file of a state dict (e.g. torchvision's
            ``resnet18-f37072fd.pth``), loaded strictly; ``None`` keeps the random initialisation.
        num_classes, zero_init_residual, norm_layer: as :class:`ResNet`.

    Example:
        >>> model = resnet18(num_classes=10).eval()
        >>> model(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _resnet(BasicBlock, [2, 2, 2, 2], weights, num_classes, zero_init_residual, norm_layer)


def resnet34(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, zero_init_residual: bool = False,
             norm_layer: NormLayer = nn.BatchNorm2d) -> ResNet:
    """ResNet-34 (BasicBlock, ``[3, 4, 6, 3]``; 21,797,672 parameters). Arguments as :func:`resnet18`."""
    return _resnet(BasicBlock, [3, 4, 6, 3], weights, num_classes, zero_init_residual, norm_layer)


def resnet50(*, weights: str | os.PathLike[str] | None = None, num_classes: int = 1000, zero_init_residual: bool = False,
             norm_layer: NormLayer = nn.BatchNorm2d) -> ResNet:
    """ResNet-50 (Bottleneck v1.5, ``[3, 4, 6, 3]``; 25,557,032 parameters). Arguments as :func:`resnet18`."""
    return _resnet(Bottleneck, [3, 4, 6, 3], weights, num_classes, zero_init_residual, norm_layer)
