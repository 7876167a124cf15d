"""The zoo's factorial design: every downsampling kind x every head, named ``<downsampling>_<head>``.

A zoo model is fixed by two factors (``docs/study.md``, the factorial design): how each of the
3 trunk stages downsamples by 2, and how the head turns the last feature map into logits. The
name is the pair, so a :class:`ZooSpec` carries both factors explicitly and nothing downstream
needs to parse names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["DOWNSAMPLINGS", "HEADS", "ZooSpec", "describe", "names", "spec"]

#: Downsampling kinds, in the order of the factorial design.
DOWNSAMPLINGS: tuple[str, ...] = ("strided", "maxpool", "blurstrided", "maxblur", "aps", "allconv", "avgpool",
                                  "learned", "learnedblur")
#: Heads, in the order of the factorial design.
HEADS: tuple[str, ...] = ("fc", "gap", "gmp")

_STAGE_TEXT = {
    "strided": "conv3x3 stride 2-BN-ReLU",
    "maxpool": "conv3x3-BN-ReLU-MaxPool2d(2)",
    "blurstrided": "conv3x3-BN-ReLU-BlurPool2d(stride 2)",
    "maxblur": "conv3x3-BN-ReLU-MaxBlurPool2d (max 2x2 stride 1, blur stride 2)",
    "aps": "conv3x3-BN-ReLU-MaxAPSPool2d (max 2x2 stride 1, adaptive polyphase stride 2)",
    "allconv": "conv3x3-BN-ReLU-conv3x3 stride 2-BN-ReLU",
    "avgpool": "conv3x3-BN-ReLU-AvgPool2d(2)",
    "learned": "conv3x3-BN-ReLU-depthwise 4x4 stride 2 (learned, random init)",
    "learnedblur": "conv3x3-BN-ReLU-depthwise 4x4 stride 2 (learned, binomial init)",
}
_HEAD_TEXT = {
    "fc": "flatten, Linear",
    "gap": "1x1 conv, global average pool",
    "gmp": "1x1 conv, global max pool",
}


@dataclass(frozen=True)
class ZooSpec:
    """One zoo model: its name and its two factors.

    Attributes:
        name: ``f"{downsampling}_{head}"``, e.g. ``"strided_gap"``.
        downsampling: one of :data:`DOWNSAMPLINGS`.
        head: one of :data:`HEADS`.
        description: one line naming the layers, e.g.
            ``"conv3x3 stride 2-BN-ReLU x3, 1x1 conv, global average pool"``.
    """

    name: str
    downsampling: str
    head: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def names() -> list[str]:
    """All zoo model names, downsampling-major: ``strided_fc, strided_gap, strided_gmp, maxpool_fc, ...``."""
    return [f"{d}_{h}" for d in DOWNSAMPLINGS for h in HEADS]


def spec(name: str) -> ZooSpec:
    """The :class:`ZooSpec` of the zoo model ``name``.

    Raises:
        ValueError: ``name`` is not one of :func:`names` (the message lists them).

    Example:
        >>> spec("maxpool_fc").downsampling, spec("maxpool_fc").head
        ('maxpool', 'fc')
    """
    downsampling, _, head = name.rpartition("_") if isinstance(name, str) else ("", "", "")
    if downsampling not in DOWNSAMPLINGS or head not in HEADS:
        raise ValueError(f"unknown zoo model {name!r}; expected one of {names()}")
    description = f"{_STAGE_TEXT[downsampling]} x3, {_HEAD_TEXT[head]}"
    return ZooSpec(name, downsampling, head, description)


def describe(name: str) -> str:
    """One-line description of the zoo model ``name`` (``spec(name).description``)."""
    return spec(name).description
