"""Build any model of the factorial zoo by name: :func:`build`."""

from __future__ import annotations

from typing import Any

import torch

from .blocks import (
    DOWNSAMPLING_OPTIONS,
    NUM_STAGES,
    PADDING_MODES,
    STAGE_STRIDE,
    PaddingMode,
    downsampling_trunk,
    feature_shape,
    head,
    is_padding_mode,
    stage_widths,
)
from .net import ZooNet
from .spec import ZooSpec, spec

__all__ = ["TOTAL_STRIDE", "build", "default_padding_mode"]

#: Total stride of every zoo trunk (3 stages of stride 2).
TOTAL_STRIDE = STAGE_STRIDE**NUM_STAGES

#: Model-specific ``build`` options of each head kind.
_HEAD_OPTIONS: dict[str, tuple[str, ...]] = {"fc": ("hidden",), "gap": (), "gmp": ()}


def default_padding_mode(name: str) -> str:
    """The conv ``padding_mode`` ``build(name)`` uses by default: ``circular`` for ``aps_*``, else ``zeros``.

    APS models default to circular padding because their exact invariance to every circular
    shift holds only then.
    """
    return "circular" if spec(name).downsampling == "aps" else "zeros"


def _size_pair(input_size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                 for v in pair):
        raise ValueError(f"input_size must be a positive int or (H, W), got {input_size!r}")
    return pair


def _check_positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def _check_sizes(zoo_spec: ZooSpec, size: tuple[int, int]) -> None:
    h, w = size
    s = TOTAL_STRIDE
    if zoo_spec.head == "fc" and (h < s or w < s):
        raise ValueError(f"{zoo_spec.name} needs input_size of at least {s}x{s}, got {h}x{w}")
    if zoo_spec.downsampling == "aps" and (h % s or w % s):
        raise ValueError(f"{zoo_spec.name} needs input_size divisible by its total stride {s} "
                         f"(exact invariance to circular shifts holds only then), got {h}x{w}")


def _check_options(zoo_spec: ZooSpec, kwargs: dict[str, Any]) -> None:
    accepted = [*DOWNSAMPLING_OPTIONS[zoo_spec.downsampling], *_HEAD_OPTIONS[zoo_spec.head]]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"{zoo_spec.name} got unexpected keyword argument(s) {unknown}; "
                        f"it accepts {accepted or 'none'}")


def _assemble(zoo_spec: ZooSpec, num_classes: int, in_channels: int, width: int,
              size: tuple[int, int], padding_mode: PaddingMode, options: dict[str, Any]) -> ZooNet:
    hidden = options.pop("hidden", None)
    features = downsampling_trunk(zoo_spec.downsampling, in_channels, width, padding_mode,
                                  **options)
    feature_hw = None
    if zoo_spec.head == "fc":
        _, h, w = feature_shape(features, in_channels, size)
        feature_hw = (int(h), int(w))
    return ZooNet(
        features,
        head(zoo_spec.head, stage_widths(width)[-1], num_classes, feature_hw, hidden),
        name=zoo_spec.name,
        downsampling=zoo_spec.downsampling,
        head_kind=zoo_spec.head,
        total_stride=TOTAL_STRIDE,
        input_size=size if zoo_spec.head == "fc" else None,
        require_divisible=zoo_spec.downsampling == "aps",
    )


def build(
    name: str,
    num_classes: int = 10,
    in_channels: int = 1,
    *,
    width: int = 16,
    input_size: int | tuple[int, int] = 32,
    padding_mode: str | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> ZooNet:
    """Build the zoo model ``name`` (``f"{downsampling}_{head}"``) at random initialisation.

    All zoo models have the same trunk: 3 stages of a 3x3 conv (padding 1), BatchNorm and a
    ReLU, widths ``width, 2 * width, 4 * width``, each stage downsampling by 2 (total stride 8).
    They differ only in how a stage downsamples (``strided``: stride-2 conv; ``maxpool``:
    ``MaxPool2d(2)``; ``blurstrided``: ``BlurPool2d``; ``maxblur``: ``MaxBlurPool2d``; ``aps``:
    ``MaxAPSPool2d``) and in the head (``fc``: flatten + ``Linear``; ``gap`` / ``gmp``: 1x1
    conv + global average / max pool). See :func:`shiftlab.zoo.spec`.

    Input ``H, W`` should be divisible by the total stride 8. For ``aps_*`` models it is required
    (exact invariance to circular shifts holds only then; checked here and in ``forward``).
    Fully connected heads (``*_fc``) accept only inputs of ``input_size``; global-pool heads
    accept any size.

    Args:
        name: one of :func:`shiftlab.zoo.names`.
        num_classes: number of output logits.
        in_channels: input image channels.
        width: channels of the first stage.
        input_size: ``H`` (square) or ``(H, W)``: sizes the ``Linear`` layer of ``*_fc`` models;
            validated for ``aps_*``; otherwise unused.
        padding_mode: conv ``padding_mode`` (``zeros``, ``reflect``, ``replicate``,
            ``circular``); ``None`` means :func:`default_padding_mode` (``circular`` for
            ``aps_*``, ``zeros`` otherwise).
        seed: if given, initialise with ``torch.manual_seed(seed)`` without touching the
            global random state.
        **kwargs: model-specific options: ``hidden`` (``*_fc``: width of a hidden FC layer);
            ``filt_size`` (default 4), ``pad_type`` (``blurstrided_*``, ``maxblur_*``;
            ``pad_type`` defaults to ``circular`` with circular ``padding_mode``, else
            ``reflect``); ``norm`` (default 2), ``filt_size`` (default 1) (``aps_*``).

    Returns:
        a :class:`ZooNet` with ``.name``, ``.downsampling``, ``.head_kind``, ``.total_stride``
        (8), ``.num_classes`` and ``.in_channels``; module paths ``features.<i>`` and
        ``head.<i>``.

    Raises:
        ValueError: unknown ``name`` (the message lists the names), bad sizes, ``input_size``
            not divisible by 8 for ``aps_*``.
        TypeError: a keyword argument the model does not accept.

    Example:
        >>> model = build("strided_gap", num_classes=10, in_channels=1, width=16)
        >>> model.downsampling, model.head_kind
        ('strided', 'gap')
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    zoo_spec = spec(name)
    num_classes = _check_positive(num_classes, "num_classes")
    in_channels = _check_positive(in_channels, "in_channels")
    width = _check_positive(width, "width")
    size = _size_pair(input_size)
    mode = default_padding_mode(name) if padding_mode is None else padding_mode
    if not is_padding_mode(mode):
        raise ValueError(f"padding_mode must be one of {list(PADDING_MODES)}, got {mode!r}")
    _check_options(zoo_spec, kwargs)
    _check_sizes(zoo_spec, size)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = _assemble(zoo_spec, num_classes, in_channels, width, size, mode, dict(kwargs))
    model.num_classes = num_classes
    model.in_channels = in_channels
    return model
