"""ResNet-18 at ImageNet scale on photographs from ``skimage.data`` (``docs/gallery.md``, "ResNet-18
at ImageNet scale"): the original network, Zhang's anti-aliased conversion and the APS conversion
with circular padding, measured side by side.

The weights are :func:`shiftlab.models.resnet18`'s: **random** (torchvision's initialisation,
seeded here) unless a local state-dict file is given (``weights=``, torchvision's keys, e.g.
``resnet18-f37072fd.pth``); nothing is downloaded. ImageNet's input normalisation is the first
layer (:class:`shiftlab.gallery.normalize.Normalize`), so every model here takes RGB images in
``[0, 1]``.

Shifts, two protocols (``docs/definitions.md``, "Shifts"): circular shifts of a ``side x side``
photograph, and Zhang's crops (``mode="crop"``): ``side x side`` windows of a photograph
``2 max_shift`` pixels larger, displaced from its centre by each shift. The circular images are
the centre windows of the crop sources, so both protocols see the same pixels unshifted.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import shiftlab as sl
from shiftlab.gallery.images import rgb_tensor
from shiftlab.gallery.normalize import Normalize
from shiftlab.gallery.onnx_models import centre_crop
from shiftlab.models import resnet18

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Measured",
    "Variant",
    "load_resnet18",
    "measure",
    "photographs",
    "variants",
]

#: ImageNet's per-channel mean and standard deviation of RGB in ``[0, 1]`` (torchvision's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_resnet18(weights: str | os.PathLike[str] | None = None, *, seed: int = 0) -> nn.Sequential:
    """ResNet-18 with ImageNet's normalisation as its first layer, in eval mode on the CPU.

    Args:
        weights: a local state-dict file with torchvision's ResNet-18 keys (loaded strictly into
            the ``resnet`` part); None keeps the random initialisation.
        seed: the seed of the random initialisation (the global RNG is left as it was).

    Shape:
        - input: :math:`(N, 3, H, W)` RGB in ``[0, 1]``
        - output: :math:`(N, 1000)` logits

    Example:
        >>> load_resnet18()(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1000])
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = resnet18(weights=weights)
    return nn.Sequential(OrderedDict(normalize=Normalize(IMAGENET_MEAN, IMAGENET_STD), resnet=net)).eval()


def photographs(names: Sequence[str], side: int) -> Tensor:
    """``skimage.data.<name>()`` for each name: the centred square, area-resized to ``side``.

    Shape:
        - output: :math:`(N, 3, side, side)` RGB in ``[0, 1]``, ``N = len(names)``

    Raises:
        ModuleNotFoundError: scikit-image is not installed (``pip install scikit-image``).
    """
    from skimage import data

    batch = []
    for name in names:
        image = rgb_tensor(getattr(data, name)())
        square = centre_crop(image, min(image.shape[-2:]))
        batch.append(F.interpolate(square, size=(side, side), mode="area"))
    return torch.cat(batch)


@dataclass
class Variant:
    """A model of the comparison: its row name, the module, and the conversion's report (None for
    the original)."""

    name: str
    model: nn.Module
    report: sl.ConversionReport | None = None


def variants(model: nn.Module, example_input: Tensor) -> list[Variant]:
    """The original, ``convert(model, "blur")`` (Zhang's placement) and ``convert(model, "aps",
    padding="circular")`` (phases shared across residual branches), traced on ``example_input``.

    Shape:
        - example_input: :math:`(N, 3, H, W)`, ``H, W`` the size the models will see
    """
    blur = sl.convert(model, "blur", example_input=example_input)
    aps = sl.convert(model, "aps", padding="circular", example_input=example_input)
    return [Variant("original", model), Variant("blur (Zhang)", blur.model.eval(), blur.report),
            Variant("APS, circular", aps.model.eval(), aps.report)]


@dataclass
class Measured:
    """One model's measurements: invariance under circular shifts and under crops (Zhang's
    protocol; None when not measured), and the per-layer profile under circular shifts."""

    name: str
    circular: sl.InvarianceResult
    crop: sl.InvarianceResult | None
    profile: sl.EquivarianceResult


def measure(models: Sequence[Variant], sources: Tensor, *, side: int, shifts: sl.ShiftSet,
            profile_shifts: Sequence[tuple[int, int]], crops: bool = True, batch_size: int = 16) -> list[Measured]:
    """Measure every model on the same images and shifts.

    Args:
        models: from :func:`variants`.
        sources: the crop sources; their centred ``side x side`` windows are the circular images.
        side: the size every model sees.
        shifts: the shifts of both invariance protocols (each ``|d| <= (S - side) / 2`` for crops).
        profile_shifts: the circular shifts of the per-layer profile.
        crops: also measure over crops (``mode="crop"``).
        batch_size: images per forward pass.

    Shape:
        - sources: :math:`(N, 3, S, S)` in ``[0, 1]``, ``S >= side``
    """
    images = centre_crop(sources, side)
    out = []
    for v in models:
        circular = sl.invariance(v.model, images, shifts=shifts, mode="circular", batch_size=batch_size)
        crop = (sl.invariance(v.model, sources, shifts=shifts, mode="crop", crop_size=(side, side),
                              batch_size=batch_size) if crops else None)
        profile = sl.equivariance(v.model, images, shifts=list(profile_shifts), mode="circular", batch_size=batch_size)
        out.append(Measured(v.name, circular, crop, profile))
    return out
