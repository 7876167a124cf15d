"""Size and geometry of a zoo model: parameters, multiply-adds, receptive field, total stride.

The study reports these per model (``docs/study.md``, the factorial design) so that models are
compared at a known cost and field of view.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules import padding as _padding

from shiftlab.measure.runner import measuring, model_device, model_dtype
from shiftlab.nn import APSPool2d, BlurPool2d, LearnedPool2d

from .net import ZooNet, count_parameters

__all__ = ["ModelInfo", "info", "receptive_field"]

#: Trunk layers that act pixel by pixel (or only pad): they neither widen the field nor subsample.
_POINTWISE = (nn.BatchNorm2d, nn.ReLU, nn.Identity, nn.Dropout, _padding._ConstantPadNd,
              _padding._ReflectionPadNd, _padding._ReplicationPadNd, _padding._CircularPadNd)


@dataclass(frozen=True)
class ModelInfo:
    """What one forward pass of a model costs and sees.

    Attributes:
        params: scalar parameters (:func:`shiftlab.zoo.count_parameters`).
        macs: multiply-adds of one forward pass of one image ``[1, C, H, W]``: every ``Conv2d``
            (grouped convs included) and ``Linear``, and the depthwise filter of every
            ``BlurPool2d`` and ``LearnedPool2d``; max and average pools, BatchNorm, ReLU, biases
            and additions are not counted.
        receptive_field: side, in input pixels, of the square window one unit of the trunk's
            last feature map depends on (:func:`receptive_field`).
        total_stride: the trunk's total downsampling factor.
    """

    params: int
    macs: int
    receptive_field: int
    total_stride: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _square(value: int | tuple[int, ...], what: str, module: nn.Module) -> int:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if pair[0] != pair[-1]:
        raise ValueError(f"{what} {pair} of {type(module).__name__} is not square; only square "
                         "geometry is supported")
    return int(pair[0])


def _geometry(module: nn.Module) -> Iterator[tuple[int, int]]:
    """``(kernel, stride)`` of every spatial step of ``module``, in execution order."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k = _square(module.kernel_size, "kernel_size", module)
        d = _square(getattr(module, "dilation", 1), "dilation", module)
        stride = module.stride if module.stride is not None else module.kernel_size
        yield d * (k - 1) + 1, _square(stride, "stride", module)
    elif isinstance(module, (BlurPool2d, LearnedPool2d)):
        yield module.filt_size, module.stride
    elif isinstance(module, APSPool2d):  # blur (stride 1), then keep one polyphase component
        yield from _geometry(module.blur)
        yield 1, module.stride
    elif isinstance(module, _POINTWISE):
        return
    elif any(True for _ in module.children()):
        for child in module.children():  # registration order is execution order in the zoo
            yield from _geometry(child)
    else:
        raise ValueError(f"cannot tell the receptive field of a {type(module).__name__} layer")


def receptive_field(trunk: nn.Module) -> tuple[int, int]:
    """Receptive field and total stride of ``trunk``, by walking its layers in order.

    Starting from ``r = 1``, ``j = 1`` (one input pixel), every conv, pool, blur and APS step of
    kernel ``k`` and stride ``s`` does ``r += (k - 1) * j`` then ``j *= s``: a unit of the last
    feature map depends on an ``r x r`` window of input pixels, and neighbouring units are ``j``
    pixels apart. Kernels count with their dilation; a ``BlurPool2d`` or ``LearnedPool2d`` is a
    ``filt_size`` kernel;
    an APS layer is its blur (stride 1) then a subsampling with ``k = 1``; the dense max of
    ``MaxBlurPool2d`` / ``MaxAPSPool2d`` is ``k = 2, s = 1``. Padding, BatchNorm and ReLU add
    nothing. The count is the theoretical field (padding can only shrink what is real content).

    Args:
        trunk: a module whose children, in registration order, are applied in sequence
            (a zoo trunk ``ZooNet.features``).

    Returns:
        ``(r, j)``: receptive field in input pixels and total stride.

    Raises:
        ValueError: a layer of unknown geometry, or non-square kernels or strides.

    Example:
        >>> from shiftlab.zoo import build
        >>> receptive_field(build("strided_gap").features)
        (15, 8)
    """
    r, j = 1, 1
    for k, s in _geometry(trunk):
        r += (k - 1) * j
        j *= s
    return r, j


def _count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-adds of ``model(x)`` for a batch of one, counted by forward hooks."""
    total = 0

    def conv(module: nn.Conv2d, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module: nn.Linear, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    def blur(module: BlurPool2d | LearnedPool2d, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        if module.filt_size > 1:  # filt_size 1 is plain subsampling
            total += output.numel() * module.filt_size**2

    with measuring(model, warn=False) as m:
        for layer in model.modules():
            for kind, hook in ((nn.Conv2d, conv), (nn.Linear, linear), ((BlurPool2d, LearnedPool2d), blur)):
                if isinstance(layer, kind):
                    m.forward_hook(layer, hook)
        model(x)
    return total


def info(model: ZooNet, input_size: int | tuple[int, int]) -> ModelInfo:
    """Parameters, multiply-adds, receptive field and total stride of a zoo model.

    ``macs`` counts one forward pass of one ``in_channels x H x W`` image: ``Conv2d`` (output
    elements times ``in_channels / groups * kh * kw``), ``Linear`` (``in * out``) and the
    depthwise filter of every ``BlurPool2d`` and ``LearnedPool2d`` (output elements times
    ``filt_size**2``; also the blurs inside ``MaxBlurPool2d`` and APS layers, none with the
    default ``filt_size=1``). Max and average pools, BatchNorm, ReLU and biases are not counted.
    The model runs in eval mode without autograd and is left as it was. ``receptive_field`` is :func:`receptive_field` of
    ``model.features``.

    Args:
        model: a :class:`~shiftlab.zoo.ZooNet` (e.g. from :func:`shiftlab.zoo.build`).
        input_size: ``H`` (square) or ``(H, W)`` of the image the MACs are counted for.

    Raises:
        TypeError: ``model`` is not a ``ZooNet``.
        ValueError: the walked total stride disagrees with ``model.total_stride``.

    Example:
        >>> from shiftlab.zoo import build
        >>> info(build("strided_gap", width=8), 32).to_dict()
        {'params': 6330, 'macs': 171008, 'receptive_field': 15, 'total_stride': 8}
    """
    if not isinstance(model, ZooNet):
        raise TypeError(f"info needs a shiftlab.zoo.ZooNet (from shiftlab.zoo.build), got "
                        f"{type(model).__name__}")
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    field, stride = receptive_field(model.features)
    if stride != model.total_stride:
        raise ValueError(f"{model.name}: its layers downsample by {stride}, but total_stride is "
                         f"{model.total_stride}")
    in_channels = getattr(model, "in_channels", None)
    if in_channels is None:
        in_channels = next(m for m in model.features.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.zeros(1, in_channels, h, w, dtype=model_dtype(model), device=model_device(model))
    return ModelInfo(count_parameters(model), _count_macs(model, x), field, stride)
