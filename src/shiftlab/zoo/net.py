"""The zoo's model class: a downsampling trunk followed by a classification head.

Every zoo model is a :class:`ZooNet`: ``features`` (an ``nn.Sequential`` trunk of 3 stages,
widths ``width, 2 * width, 4 * width``, total stride 8) and ``head`` (an ``nn.Sequential``
classifier). Only the downsampling in the trunk and the head differ between models, so a
per-layer report reads the same module paths for every model: ``features.0`` (first conv),
``features.1`` (its BatchNorm), ``features.2`` (its ReLU), ..., ``head.0``, ...
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ZooNet", "count_parameters"]


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (shared parameters counted once).

    Args:
        module: any ``nn.Module``.
        trainable_only: count only parameters with ``requires_grad=True``.

    Example:
        >>> count_parameters(nn.Conv2d(1, 16, 3))
        160
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class ZooNet(nn.Module):
    """A zoo classifier: ``head(features(x))``.

    Args:
        features: the trunk; its output is the last feature map before the head.
        head: the classifier, from the trunk's feature map to logits ``[N, num_classes]``.
        name: the zoo name (e.g. ``"strided_gap"``).
        downsampling: the trunk's downsampling kind (one of ``shiftlab.zoo.DOWNSAMPLINGS``).
        head_kind: the head's kind (one of ``shiftlab.zoo.HEADS``).
        total_stride: the trunk's total downsampling factor (8 for every zoo model): the last
            feature map is ``H / 8 x W / 8`` for ``H, W`` divisible by 8.
        input_size: ``(H, W)`` the model only accepts (fully connected heads, whose ``Linear``
            layer is sized for one feature-map size), or ``None`` for any input size.
        require_divisible: if true, ``forward`` rejects inputs whose ``H`` or ``W`` is not a
            multiple of ``total_stride`` (used by the ``aps_*`` models, whose exact invariance to
            circular shifts needs it). Can be switched off by setting the attribute.

    ``downsampling`` and ``head_kind`` are stored as given (:func:`shiftlab.zoo.build` sets them
    from the model's :class:`~shiftlab.zoo.ZooSpec`), so consumers read them instead of parsing
    ``name``.

    Attributes ``num_classes`` and ``in_channels`` are set by :func:`shiftlab.zoo.build`.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`; ``H, W`` should be divisible by ``total_stride``
          (required for ``aps_*`` models; equal to ``input_size`` for fully connected heads).
        - Output: :math:`(N, num\\_classes)`.
    """

    num_classes: int
    in_channels: int

    def __init__(
        self,
        features: nn.Sequential,
        head: nn.Sequential,
        *,
        name: str,
        downsampling: str,
        head_kind: str,
        total_stride: int = 8,
        input_size: tuple[int, int] | None = None,
        require_divisible: bool = False,
    ) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.name = name
        self.downsampling = downsampling
        self.head_kind = head_kind
        self.total_stride = total_stride
        self.input_size = input_size
        self.require_divisible = require_divisible

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.head(self.features(x))

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(
                f"{self.name} expects a 4-D input [N, C, H, W], got shape {tuple(x.shape)}"
            )
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if self.input_size is not None and size != tuple(self.input_size):
            h, w = self.input_size
            raise ValueError(
                f"{self.name} has a fully connected head built for {h}x{w} inputs, got "
                f"{size[0]}x{size[1]} (input shape {tuple(x.shape)}); build it with "
                f"input_size={size} or use a global-pooling model"
            )
        s = self.total_stride
        if self.require_divisible and (size[0] % s or size[1] % s):
            raise ValueError(
                f"{self.name} needs H and W divisible by its total stride {s} (exact shift "
                f"invariance holds only then), got {size[0]}x{size[1]}"
            )

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts ``{"features": ..., "head": ..., "total": ...}``."""
        return {
            "features": count_parameters(self.features),
            "head": count_parameters(self.head),
            "total": count_parameters(self),
        }

    def extra_repr(self) -> str:
        size = "any" if self.input_size is None else f"{self.input_size[0]}x{self.input_size[1]}"
        return (f"name={self.name!r}, downsampling={self.downsampling!r}, head_kind={self.head_kind!r}, "
                f"total_stride={self.total_stride}, input_size={size}")
