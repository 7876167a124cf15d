"""Size and geometry of a zoo model: parameters, multiply-adds, receptive field, total stride.

The study reports these per model (``docs/study.md``, the factorial design) so that models are
compared at a known cost and field of view; the same for the segmentation U-Nets
(``docs/segmentation.md``, the models).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules import padding as _padding

from shiftlab.measure.runner import measuring, model_device, model_dtype
from shiftlab.nn import APSPool2d, APSUpsample2d, BlurPool2d, LearnedPool2d

from .net import ZooNet, count_parameters
from .unet import UNet

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
            (grouped convs included), ``ConvTranspose2d`` and ``Linear``, and the depthwise filter
            of every ``BlurPool2d``, ``LearnedPool2d`` and ``APSUpsample2d``; max and average
            pools, bilinear upsampling, concatenation, BatchNorm, ReLU, biases and additions are
            not counted.
        receptive_field: side, in input pixels, of the square window one unit of the trunk's
            last feature map depends on; for a :class:`~shiftlab.zoo.UNet`, the window one output
            logit depends on (:func:`receptive_field`).
        total_stride: the trunk's total downsampling factor (``2 ** levels`` for a U-Net).
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
    """Receptive field and total stride of a trunk or of a U-Net, by walking its layers.

    A trunk's layers are walked in order. Starting from ``r = 1``, ``j = 1`` (one input pixel),
    every conv, pool, blur and APS step of kernel ``k`` and stride ``s`` does ``r += (k - 1) * j``
    then ``j *= s``: a unit of the last feature map depends on an ``r x r`` window of input
    pixels, and neighbouring units are ``j`` pixels apart. Kernels count with their dilation; a
    ``BlurPool2d`` or ``LearnedPool2d`` is a ``filt_size`` kernel; an APS layer is its blur
    (stride 1) then a subsampling with ``k = 1``; the dense max of ``MaxBlurPool2d`` /
    ``MaxAPSPool2d`` is ``k = 2, s = 1``. Padding, BatchNorm and ReLU add nothing. The count is
    the theoretical field (padding can only shrink what is real content).

    A :class:`~shiftlab.zoo.UNet`'s field is the side of the input window one output logit
    depends on, the widest over the logits. Its deepest path bounds it: encoder, bottleneck, then
    every decoder level back up. (A skip reads a window of an encoder map through fewer layers;
    the deeper path reads the same map through the upsampling's preimage of that window, widened
    by the convs below it and downsampled back, which contains it.) The encoder and bottleneck are
    a trunk (``r`` and ``j = 2 ** levels`` as above). The decoder is walked backwards from one
    logit with exact unit indices, because after an upsampling a window's size depends on where it
    starts: a 3x3 conv widens it by one unit each side; ``ConvTranspose2d(2, stride 2)`` maps an
    output unit ``o`` to the input unit ``o // 2`` alone (no widening beyond the halving);
    bilinear upsampling reads the two inputs around ``(o + 1/2) / 2 - 1/2`` (two, where the
    transposed conv reads one); APS-U's 3x3 blur reads three zero-inserted positions, of which
    those of the phase APS kept hold an input. Every logit phase ``0 .. 2 ** levels - 1`` (the
    geometry repeats with that period) and every phase APS can keep is tried; with ``n`` the
    widest window of bottleneck units, the field is ``r + (n - 1) * j``. Some logits' windows are
    narrower; dead ReLUs and maxima can only narrow what a logit really reads.

    Args:
        trunk: a module whose children, in registration order, are applied in sequence
            (a zoo trunk ``ZooNet.features``), or a ``UNet``.

    Returns:
        ``(r, j)``: receptive field in input pixels and total stride.

    Raises:
        ValueError: a layer of unknown geometry, or non-square kernels or strides.

    Example:
        >>> from shiftlab.zoo import UNet, build
        >>> receptive_field(build("strided_gap").features)
        (15, 8)
        >>> receptive_field(UNet("maxpool", "transposed", levels=3))
        (100, 8)
    """
    if isinstance(trunk, UNet):
        return _unet_field(trunk)
    r, j = 1, 1
    for k, s in _geometry(trunk):
        r += (k - 1) * j
        j *= s
    return r, j


#: ``(first, last)``: the units, along one axis of a feature map, that something depends on.
_Window = tuple[int, int]


def _input_windows(module: nn.Module, windows: set[_Window]) -> set[_Window]:
    """The window of ``module``'s input that each window of its output depends on, along one axis.

    Exact unit indices, not only sizes: after an upsampling the window's size depends on where it
    starts. Rules (a unit ``o`` of the output depends on):

    - ``Conv2d`` (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``): inputs
      ``s*o - p ... s*o - p + d*(k - 1)``.
    - ``ConvTranspose2d``: the inputs ``i`` with ``s*i - p + d*t = o`` for a tap ``0 <= t < k``;
      with ``k = s = 2`` that is ``i = o // 2`` alone (each input unit fills its own 2x2 block).
    - bilinear ``Upsample`` (``align_corners=False``, factor ``s``): the two taps around the
      sampled point ``c = (o + 1/2) / s - 1/2``, ``floor(c)`` and ``ceil(c)`` (for ``s = 2``,
      ``c`` is never whole, so always two inputs).
    - ``APSUpsample2d`` (factor ``s``, blur ``f``): the blur reads zero-inserted positions
      ``o - (f-1)//2 ... o + f//2``, of which only those of the kept phase ``q``
      (``s*i + q``) hold an input unit ``i``. ``q`` is chosen by the input, so every ``q`` gives
      a window.
    - BatchNorm, ReLU, padding: the same window. A container: its children in reverse order.

    Interior units only (the border clamps or wraps, never widens).

    Raises:
        ValueError: a layer of unknown geometry.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        if isinstance(module.padding, str):
            raise ValueError(f"cannot tell the receptive field of a {type(module).__name__} with "
                             f"padding={module.padding!r}; give the padding in pixels")
        k, s = _square(module.kernel_size, "kernel_size", module), _square(module.stride, "stride", module)
        p, d = _square(module.padding, "padding", module), _square(module.dilation, "dilation", module)
        if isinstance(module, nn.Conv2d):
            return {(s * lo - p, s * hi - p + d * (k - 1)) for lo, hi in windows}
        return {(-((d * (k - 1) - lo - p) // s), (hi + p) // s) for lo, hi in windows}  # ceil, floor
    if isinstance(module, nn.Upsample):
        factor = module.scale_factor
        if module.mode != "bilinear" or module.align_corners or not isinstance(factor, (int, float)) \
                or factor != int(factor):
            raise ValueError(f"cannot tell the receptive field of {module}: only bilinear upsampling by "
                             "a whole factor, align_corners=False")
        s = int(factor)  # c = (2 o + 1 - s) / (2 s): floor(c) and ceil(c)
        return {((2 * lo + 1 - s) // (2 * s), -((s - 1 - 2 * hi) // (2 * s))) for lo, hi in windows}
    if isinstance(module, APSUpsample2d):
        s, f = module.stride, module.filt_size
        read = {(lo - (f - 1) // 2, hi + f // 2) for lo, hi in windows}
        return {(-((q - a) // s), (b - q) // s) for a, b in read for q in range(s)}  # s*i + q in [a, b]
    if isinstance(module, _POINTWISE):
        return windows
    children = list(module.children())
    if not children:
        raise ValueError(f"cannot tell the receptive field of a {type(module).__name__} layer")
    for child in reversed(children):
        windows = _input_windows(child, windows)
    return windows


def _unet_field(model: UNet) -> tuple[int, int]:
    """Receptive field and total stride of a U-Net (the rule: :func:`receptive_field`)."""
    windows = {(x, x) for x in range(2**model.levels)}
    windows = _input_windows(model.head, windows)
    for level in range(model.levels):
        windows = _input_windows(model.up[level], _input_windows(model.decoder[level], windows))
    n = max(hi - lo + 1 for lo, hi in windows)
    trunk = [layer for level in range(model.levels) for layer in (model.encoder[level], model.down[level])]
    r, j = receptive_field(nn.Sequential(*trunk, model.bottleneck))
    return r + (n - 1) * j, j


def _count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-adds of ``model(x)`` for a batch of one, counted by forward hooks."""
    total = 0

    def conv(module: nn.Conv2d, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def transposed(module: nn.ConvTranspose2d, inputs: tuple, output: Tensor) -> None:
        nonlocal total  # every input element meets every tap of out_channels / groups filters
        kh, kw = module.kernel_size
        total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw

    def linear(module: nn.Linear, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    def blur(module: BlurPool2d | LearnedPool2d | APSUpsample2d, inputs: tuple, output: Tensor) -> None:
        nonlocal total
        if module.filt_size > 1:  # filt_size 1 is plain subsampling or zero insertion
            total += output.numel() * module.filt_size**2

    hooks = ((nn.Conv2d, conv), (nn.ConvTranspose2d, transposed), (nn.Linear, linear),
             ((BlurPool2d, LearnedPool2d, APSUpsample2d), blur))
    with measuring(model, warn=False) as m:
        for layer in model.modules():
            for kind, hook in hooks:
                if isinstance(layer, kind):
                    m.forward_hook(layer, hook)
        model(x)
    return total


def info(model: ZooNet | UNet, input_size: int | tuple[int, int]) -> ModelInfo:
    """Parameters, multiply-adds, receptive field and total stride of a zoo model or a U-Net.

    ``macs`` counts one forward pass of one ``in_channels x H x W`` image: ``Conv2d`` (output
    elements times ``in_channels / groups * kh * kw``), ``ConvTranspose2d`` (input elements times
    ``out_channels / groups * kh * kw``), ``Linear`` (``in * out``) and the depthwise filter of
    every ``BlurPool2d``, ``LearnedPool2d`` and ``APSUpsample2d`` (output elements times
    ``filt_size**2``: a blur is counted at the resolution it writes, so APS-U's after the zero
    insertion; also the blurs inside ``MaxBlurPool2d`` and APS layers, none with the default
    ``filt_size=1``). Max and average pools, bilinear upsampling (4 multiply-adds per output
    element, not counted, as pooling is not), concatenation, BatchNorm, ReLU and biases are not
    counted. The model runs in eval mode without autograd and is left as it was.
    ``receptive_field`` is :func:`receptive_field` of ``model.features`` (of the whole ``UNet``).

    Args:
        model: a :class:`~shiftlab.zoo.ZooNet` (e.g. from :func:`shiftlab.zoo.build`) or a
            :class:`~shiftlab.zoo.UNet`.
        input_size: ``H`` (square) or ``(H, W)`` of the image the MACs are counted for (for a
            U-Net, multiples of ``2 ** levels``).

    Raises:
        TypeError: ``model`` is neither a ``ZooNet`` nor a ``UNet``.
        ValueError: the walked total stride disagrees with ``model.total_stride`` (a U-Net's
            ``2 ** levels``).

    Example:
        >>> from shiftlab.zoo import UNet, build
        >>> info(build("strided_gap", width=8), 32).to_dict()
        {'params': 6330, 'macs': 171008, 'receptive_field': 15, 'total_stride': 8}
        >>> info(UNet("maxpool", "transposed", width=8), 64).to_dict()
        {'params': 121123, 'macs': 36438016, 'receptive_field': 100, 'total_stride': 8}
    """
    if isinstance(model, UNet):
        field, stride = receptive_field(model)
        expected, in_channels = 2**model.levels, model.in_channels
    elif isinstance(model, ZooNet):
        field, stride = receptive_field(model.features)
        expected = model.total_stride
        in_channels = getattr(model, "in_channels", None) or next(  # a hand-made ZooNet: its first conv's
            m for m in model.features.modules() if isinstance(m, nn.Conv2d)).in_channels
    else:
        raise TypeError(f"info needs a shiftlab.zoo.ZooNet (from shiftlab.zoo.build) or a shiftlab.zoo.UNet, "
                        f"got {type(model).__name__}")
    if stride != expected:
        raise ValueError(f"{model.name}: its layers downsample by {stride}, but total_stride is {expected}")
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    x = torch.zeros(1, in_channels, h, w, dtype=model_dtype(model), device=model_device(model))
    return ModelInfo(count_parameters(model), _count_macs(model, x), field, stride)
