"""Small U-Nets for the segmentation scenes (``docs/segmentation.md``): the segmentation FCN, with its
downsampling and its upsampling as the two factors.

Every U-Net has the same body: ``levels`` encoder levels of two ``conv3x3 - BN - ReLU`` blocks at
widths ``width, 2 width, 4 width, ...``, a downsampling by 2 between levels, a bottleneck level, and
a decoder that upsamples by 2, concatenates the encoder's map of the same level (the skip;
:class:`SkipMerge`, a module so that the per-layer profile shows each merge) and runs two conv
blocks, then a ``1x1`` conv to the class logits at full resolution. They differ in:

- downsampling (``UNET_DOWNSAMPLINGS``): ``maxpool`` (``MaxPool2d(2)``, the U-Net's), ``strided``
  (a ``conv3x3`` of stride 2 - BN - ReLU, the FCN's learned pooling), ``blur`` (Zhang's
  ``MaxBlurPool2d``: max at stride 1, then a 4x4 binomial blur of stride 2), ``aps``
  (``MaxAPSPool2d``: max at stride 1, then adaptive polyphase sampling);
- upsampling (``UNET_UPSAMPLINGS``): ``transposed`` (``ConvTranspose2d(2, stride 2)``),
  ``bilinear`` (bilinear interpolation, then a ``1x1`` conv), ``aps`` (APS-U: zero insertion at
  the component the same level's APS downsampling kept, a 3x3 binomial blur, then a ``1x1`` conv;
  only with ``aps`` downsampling, ``docs/definitions.md``, "APS upsampling").

With ``aps`` down, ``aps`` up and ``padding_mode="circular"`` the network is exactly equivariant to
every circular shift of an input whose sides are multiples of ``2 ** levels`` (tested in float64).
With fixed-phase downsampling (``maxpool``, ``strided``, ``blur``) and ``transposed`` upsampling it is
exactly equivariant to circular shifts by multiples of ``2 ** levels`` only; ``bilinear``
upsampling clamps at the border (not circular), so not even there.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from shiftlab.nn import APSUpsample2d, Conv2d, MaxAPSPool2d

from .blocks import PaddingMode, _blur_pad_type, _max_blur_pool, is_padding_mode
from .net import count_parameters

__all__ = ["UNET_DOWNSAMPLINGS", "UNET_UPSAMPLINGS", "SkipMerge", "UNet", "unet_names"]

#: How a U-Net downsamples between levels (module notes).
UNET_DOWNSAMPLINGS = ("maxpool", "strided", "blur", "aps")
#: How a U-Net upsamples in its decoder (module notes); ``aps`` only after ``aps`` downsampling.
UNET_UPSAMPLINGS = ("transposed", "bilinear", "aps")


def unet_names() -> list[str]:
    """Every valid ``f"unet_{downsampling}_{upsampling}"`` (APS-U only after APS downsampling)."""
    return [f"unet_{d}_{u}" for d in UNET_DOWNSAMPLINGS for u in UNET_UPSAMPLINGS if u != "aps" or d == "aps"]


def _block(cin: int, cout: int, padding_mode: PaddingMode) -> nn.Sequential:
    def conv_bn_relu(a: int, b: int) -> list[nn.Module]:
        return [Conv2d(a, b, 3, padding=1, padding_mode=padding_mode, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

    return nn.Sequential(*conv_bn_relu(cin, cout), *conv_bn_relu(cout, cout))


def _down(kind: str, channels: int, padding_mode: PaddingMode) -> nn.Module:
    if kind == "maxpool":
        return nn.MaxPool2d(2)
    if kind == "strided":
        return nn.Sequential(Conv2d(channels, channels, 3, stride=2, padding=1, padding_mode=padding_mode, bias=False),
                             nn.BatchNorm2d(channels), nn.ReLU())
    if kind == "blur":
        return _max_blur_pool(channels, padding_mode, 4, _blur_pad_type(padding_mode, None))
    return MaxAPSPool2d(channels, kernel_size=2, stride=2)


def _up(kind: str, cin: int, cout: int, leader: nn.Module, padding_mode: PaddingMode) -> nn.Module:
    if kind == "transposed":
        return nn.ConvTranspose2d(cin, cout, 2, stride=2)
    if kind == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), nn.Conv2d(cin, cout, 1))
    assert isinstance(leader, MaxAPSPool2d)  # checked in UNet.__init__
    pad_type = "circular" if padding_mode == "circular" else "reflect"
    return nn.Sequential(OrderedDict([("aps", APSUpsample2d(cin, stride=2, filt_size=3, pad_type=pad_type)
                                       .follow(leader.aps)), ("proj", nn.Conv2d(cin, cout, 1))]))


class SkipMerge(nn.Module):
    """The decoder's merge of one level: the upsampled map and the encoder's skip map of the same
    level, concatenated along the channels (a module, so that the per-layer profile has a row for
    each merge; no parameters).

    Shape:
        - up: :math:`(N, C_u, H, W)`; skip: :math:`(N, C_s, H, W)`.
        - Output: :math:`(N, C_u + C_s, H, W)`.
    """

    def forward(self, up: Tensor, skip: Tensor) -> Tensor:
        return torch.cat([up, skip], dim=1)


class UNet(nn.Module):
    """A small U-Net (module notes): ``levels`` downsamplings by 2, skip connections, full-resolution
    logits.

    Args:
        downsampling: one of :data:`UNET_DOWNSAMPLINGS`.
        upsampling: one of :data:`UNET_UPSAMPLINGS` (``aps`` needs ``aps`` downsampling).
        num_classes: logits per pixel (the scenes' classes, background included).
        in_channels: input channels.
        width: channels of the first level (level ``l`` has ``width * 2 ** l``).
        levels: downsamplings (>= 1); input sides must be multiples of ``2 ** levels``.
        padding_mode: the convolutions' (and the blur's) padding, ``zeros`` or ``circular``.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`, ``H, W`` multiples of ``2 ** levels``.
        - Output: :math:`(N, num\\_classes, H, W)`.

    Example:
        >>> net = UNet("aps", "aps", num_classes=11, width=4, levels=2, padding_mode="circular")
        >>> net(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 11, 16, 16])
    """

    def __init__(self, downsampling: str, upsampling: str, num_classes: int = 11, in_channels: int = 1, *,
                 width: int = 16, levels: int = 3, padding_mode: str = "zeros") -> None:
        super().__init__()
        if downsampling not in UNET_DOWNSAMPLINGS:
            raise ValueError(f"downsampling must be one of {UNET_DOWNSAMPLINGS}, got {downsampling!r}")
        if upsampling not in UNET_UPSAMPLINGS:
            raise ValueError(f"upsampling must be one of {UNET_UPSAMPLINGS}, got {upsampling!r}")
        if upsampling == "aps" and downsampling != "aps":
            raise ValueError("APS upsampling restores the phase its paired APS downsampling kept: it needs "
                             f"downsampling='aps', got {downsampling!r}")
        if not is_padding_mode(padding_mode) or padding_mode not in ("zeros", "circular"):
            raise ValueError(f"padding_mode must be 'zeros' or 'circular', got {padding_mode!r}")
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        self.downsampling, self.upsampling, self.levels = downsampling, upsampling, levels
        self.name = f"unet_{downsampling}_{upsampling}"
        self.num_classes, self.in_channels = num_classes, in_channels
        widths = [width * 2**level for level in range(levels + 1)]
        self.encoder = nn.ModuleList([_block(in_channels if level == 0 else widths[level - 1], widths[level],
                                             padding_mode) for level in range(levels)])
        self.down = nn.ModuleList([_down(downsampling, widths[level], padding_mode) for level in range(levels)])
        self.bottleneck = _block(widths[levels - 1], widths[levels], padding_mode)
        self.up = nn.ModuleList([_up(upsampling, widths[level + 1], widths[level], self.down[level], padding_mode)
                                 for level in range(levels)])
        self.merge = nn.ModuleList([SkipMerge() for _ in range(levels)])
        self.decoder = nn.ModuleList([_block(2 * widths[level], widths[level], padding_mode) for level in range(levels)])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        multiple = 2**self.levels
        if x.dim() != 4 or x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(f"{self.name} needs [N, C, H, W] with H and W multiples of {multiple}, "
                             f"got shape {tuple(x.shape)}")
        skips = []
        for encode, down in zip(self.encoder, self.down, strict=True):
            x = encode(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for level in reversed(range(self.levels)):
            x = self.decoder[level](self.merge[level](self.up[level](x), skips[level]))
        out: Tensor = self.head(x)
        return out

    def extra_repr(self) -> str:
        return f"{self.name}, levels={self.levels}, params={count_parameters(self):,}"
