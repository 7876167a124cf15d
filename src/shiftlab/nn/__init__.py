"""Shift-robust downsampling layers: BlurPool (Zhang 2019) and adaptive polyphase sampling (APS,
Chaman & Dokmanic 2021), their max-pooling variants, APS's paired upsampling (APS-U), a learned depthwise pool with the blur's
support, and helpers that rewrite strided convolutions as ``conv(stride 1) -> pool(stride)`` with the same weights."""

from .aps import APSPool2d, aps_pool2d
from .aps_upsample import APSUpsample2d, aps_upsample2d
from .blurpool import PAD_TYPES, BlurPool2d, binomial_kernel2d, blur_pool2d
from .circular_pad import CircularPad2d, Conv2d, circular_pad2d
from .dense_max import MaxPool2d, dense_max2d
from .downsample import MaxAPSPool2d, MaxBlurPool2d, aps_conv, blurred_conv
from .learned_pool import LearnedPool2d, alias_fraction

__all__ = [
    "PAD_TYPES",
    "APSPool2d",
    "APSUpsample2d",
    "BlurPool2d",
    "CircularPad2d",
    "Conv2d",
    "LearnedPool2d",
    "MaxAPSPool2d",
    "MaxBlurPool2d",
    "MaxPool2d",
    "aps_conv",
    "alias_fraction",
    "aps_pool2d",
    "aps_upsample2d",
    "binomial_kernel2d",
    "blur_pool2d",
    "circular_pad2d",
    "blurred_conv",
    "dense_max2d",
]
