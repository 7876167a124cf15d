"""Standard architectures with torchvision's state-dict keys: ResNet-18/34/50, VGG-11/16 (with
and without BatchNorm), MobileNetV2.

Our own definitions, module for module torchvision's (``torchvision.models`` 0.28), so
``state_dict()`` has the same keys and shapes and a user's torchvision checkpoint loads unchanged
with ``weights="path/to/file.pth"``; nothing is downloaded, and without ``weights`` the
parameters are random (torchvision's initialisation from torch's global RNG). ``docs/models.md``
has the sizes and how to load a checkpoint. :mod:`~shiftlab.models.random_init` moves random weights
away from the degenerate point where every image gets one class.

:data:`MODELS` maps each name to its factory, ``MODELS[name](**kwargs) -> nn.Module`` (the CLI's
``shiftlab measure shiftlab.models:resnet18`` and bare names use it).

Example:
    >>> from shiftlab.models import MODELS
    >>> sorted(MODELS)
    ['mobilenet_v2', 'resnet18', 'resnet34', 'resnet50', 'vgg11', 'vgg11_bn', 'vgg16', 'vgg16_bn']
"""

from collections.abc import Callable

from torch import nn

from .mobilenet import MobileNetV2, mobilenet_v2
from .random_init import randomise_norms, spread_classifier
from .resnet import ResNet, resnet18, resnet34, resnet50
from .vgg import VGG, vgg11, vgg11_bn, vgg16, vgg16_bn

__all__ = [
    "MODELS",
    "VGG",
    "MobileNetV2",
    "ResNet",
    "mobilenet_v2",
    "randomise_norms",
    "resnet18",
    "resnet34",
    "resnet50",
    "spread_classifier",
    "vgg11",
    "vgg11_bn",
    "vgg16",
    "vgg16_bn",
]

#: Every model by name: ``MODELS[name](**kwargs)`` builds it (keyword arguments as the factory).
MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "vgg11": vgg11,
    "vgg11_bn": vgg11_bn,
    "vgg16": vgg16,
    "vgg16_bn": vgg16_bn,
    "mobilenet_v2": mobilenet_v2,
}
