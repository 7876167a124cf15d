"""Model zoo: the factorial design of small CNNs, every downsampling kind x every head.

Every model has the same trunk (3 stages ``conv3x3 - BN - ReLU [- pool]``, widths ``width,
2 * width, 4 * width``, total stride 8), so a comparison isolates the two ingredients the
question is about (``docs/study.md``, the factorial design). A model is named
``f"{downsampling}_{head}"``:

=============  ===============================================================================
downsampling   each stage (x3)
=============  ===============================================================================
strided        conv3x3 stride 2 - BN - ReLU (plain decimation)
maxpool        conv3x3 - BN - ReLU - ``MaxPool2d(2)``
blurstrided    conv3x3 - BN - ReLU - ``BlurPool2d(stride 2)`` (Zhang's anti-aliased strided conv)
maxblur        conv3x3 - BN - ReLU - ``MaxBlurPool2d`` (max 2x2 stride 1, blur stride 2; Zhang)
aps            conv3x3 - BN - ReLU - ``MaxAPSPool2d`` (max 2x2 stride 1, adaptive polyphase
               stride 2; Chaman & Dokmanic); circular padding by default
=============  ===============================================================================

=====  ======================================
head   classifier
=====  ======================================
fc     flatten, ``Linear``
gap    1x1 conv, global average pool
gmp    1x1 conv, global max pool
=====  ======================================

e.g. ``strided_gap`` (the fully convolutional network of the question), ``maxpool_fc`` (the
classic CNN), ``blurstrided_gap`` (the anti-aliased FCN), ``aps_gap``. Input ``H, W`` should be
divisible by the total stride 8 (required for ``aps_*``, whose exact invariance to every
circular shift holds only then). ``*_fc`` models accept only their ``input_size``.

Example:
    >>> import shiftlab.zoo as zoo
    >>> model = zoo.build("maxpool_fc", num_classes=10, in_channels=1, input_size=32)
    >>> model.downsampling, model.head_kind, model.total_stride, zoo.count_parameters(model)
    ('maxpool', 'fc', 8, 33770)
    >>> zoo.info(model, 32).receptive_field
    22
"""

from .blocks import PADDING_MODES, stage_widths
from .info import ModelInfo, info, receptive_field
from .net import ZooNet, count_parameters
from .registry import TOTAL_STRIDE, build, default_padding_mode
from .spec import DOWNSAMPLINGS, HEADS, ZooSpec, describe, names, spec
from .unet import UNET_DOWNSAMPLINGS, UNET_UPSAMPLINGS, UNet, unet_names

__all__ = [
    "DOWNSAMPLINGS",
    "HEADS",
    "PADDING_MODES",
    "TOTAL_STRIDE",
    "UNET_DOWNSAMPLINGS",
    "UNET_UPSAMPLINGS",
    "ModelInfo",
    "UNet",
    "ZooNet",
    "ZooSpec",
    "build",
    "count_parameters",
    "default_padding_mode",
    "describe",
    "info",
    "names",
    "receptive_field",
    "spec",
    "stage_widths",
    "unet_names",
]
