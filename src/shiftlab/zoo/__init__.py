"""Model zoo: small CNNs that differ only in how they downsample and in their head.

Every model has the same trunk (3 stages ``conv3x3 - BN - ReLU [- pool]``, widths ``width,
2 * width, 4 * width``, total stride 8), so a comparison isolates the two ingredients the
question is about (DESIGN.md claims C5, C6):

=============  ==========================================  ==============================
name           downsampling (x3)                           head
=============  ==========================================  ==============================
maxpool_fc     conv3x3 - BN - ReLU - ``MaxPool2d(2)``           flatten, ``Linear``
strided_fc     conv3x3 stride 2 - ReLU                     flatten, ``Linear``
fcn_gap        conv3x3 stride 2 - ReLU                     1x1 conv, global average pool
fcn_gmp        conv3x3 stride 2 - ReLU                     1x1 conv, global max pool
maxpool_gap    conv3x3 - BN - ReLU - ``MaxPool2d(2)``           1x1 conv, global average pool
blurpool_gap   conv3x3 - BN - ReLU - ``MaxBlurPool2d`` (Zhang)  1x1 conv, global average pool
aps_gap        circular conv3x3 - BN - ReLU - ``MaxAPSPool2d``  1x1 conv, global average pool
=============  ==========================================  ==============================

Input ``H, W`` should be divisible by the total stride 8 (required for ``aps_gap``, whose
exact invariance to every circular shift holds only then). ``*_fc`` models accept only their
``input_size``.

Example:
    >>> import shiftlab.zoo as zoo
    >>> model = zoo.build("maxpool_fc", num_classes=10, in_channels=1, input_size=32)
    >>> model.total_stride, zoo.count_parameters(model)
    (8, 33770)
"""

from .blocks import PADDING_MODES, stage_widths
from .net import ZooNet, count_parameters
from .registry import TOTAL_STRIDE, ZOO, ZooEntry, build, describe, names

__all__ = [
    "PADDING_MODES",
    "TOTAL_STRIDE",
    "ZOO",
    "ZooEntry",
    "ZooNet",
    "build",
    "count_parameters",
    "describe",
    "names",
    "stage_widths",
]
