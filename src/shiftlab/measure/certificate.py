"""The polyphase certificate (``docs/definitions.md``, "Polyphase certificate").

A classifier ``f`` whose trunk has total stride ``S = (S_y, S_x)`` and whose head pools globally
is, with circular padding and ``S`` dividing the image size, invariant to circular shifts by
multiples of ``S``: ``f(T_{d + kS} x) = f(T_d x)``. Its prediction at any circular shift ``d``
is then its prediction at the residue ``d mod S``, so the whole circular shift profile (all
``H x W`` shifts) costs ``S_y x S_x`` distinct forward passes instead of ``H x W``.

The premise is *checked on the data*, never assumed from the architecture: :func:`certify`
infers ``S`` from the model's last 4-D map, then compares the outputs at a few non-zero
multiples of ``S`` with the unshifted outputs. It fails, and says why, for zero-filled or
fractional shifts, sizes not divisible by ``S``, or outputs that move (an FC head, zero padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shiftlab.measure.runner import forward_with_leaf_hook
from shiftlab.measure.shifts import shift_many
from shiftlab.measure.shiftsets import ShiftSet

__all__ = ["Certificate", "certify", "residue_plan", "total_stride"]

#: Images and aligned shifts the premise is checked on.
CHECK_IMAGES = 8
#: A deviation of the outputs up to this many machine epsilons (of the model's dtype), relative
#: to the largest output, counts as equal (global pooling sums in another order after a shift).
TOLERANCE_EPS = 1000.0


@dataclass(frozen=True)
class Certificate:
    """Whether a model's circular shift profile may be computed from one pass per residue.

    ``holds``: the premise was checked and holds; ``stride``: the total stride ``(S_y, S_x)``
    (None when it could not be inferred); ``reason``: what was checked, or why it fails;
    ``checked``: the aligned shifts compared; ``deviation``: the largest output difference
    there, relative to the largest output; ``tolerance``: the bound it was held to.
    """

    holds: bool
    stride: tuple[int, int] | None
    reason: str
    checked: tuple[tuple[int, int], ...] = ()
    deviation: float | None = None
    tolerance: float | None = None


def total_stride(model: nn.Module, x: Tensor) -> tuple[int, int] | None:
    """``(H / h, W / w)`` of the last 4-D map ``[n, C, h, w]`` (larger than 1 x 1) the model's leaf
    modules produce for ``x [n, C, H, W]``; None when there is none, or when some map's size does
    not divide the input or its stride is not a multiple of the stride before it (a size lost to
    rounding, e.g. 28 -> 14 -> 7 -> 4). Maps larger than the one before (a padding layer's
    output) are passed over. Call inside :func:`shiftlab.measure.runner.measuring`.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, stride=2, padding=1))
        >>> total_stride(net, torch.zeros(1, 1, 16, 16)), total_stride(net, torch.zeros(1, 1, 14, 14))
        ((4, 4), None)
    """
    sizes: list[tuple[int, int]] = []

    def hook(module: nn.Module, inputs: tuple[object, ...], output: object) -> None:
        if isinstance(output, Tensor) and output.dim() == 4 and max(output.shape[-2:]) > 1:  # not a pooled 1x1
            sizes.append((output.shape[-2], output.shape[-1]))

    forward_with_leaf_hook(model, x, hook)
    H, W = x.shape[-2:]
    stride, last = (1, 1), (H, W)
    for h, w in sizes:
        if h > last[0] or w > last[1]:  # a padding layer's output, cropped again by the next layer
            continue
        if H % h or W % w or (H // h) % stride[0] or (W // w) % stride[1]:
            return None
        stride, last = (H // h, W // w), (h, w)
    return stride if sizes else None


def residue_plan(shift_set: ShiftSet, stride: tuple[int, int]) -> tuple[ShiftSet, Tensor]:
    """The distinct residues ``d mod S`` of integer shifts, and for each shift its residue's
    position: ``(residues, index)`` with ``index [|S|]`` into ``residues``.

    Example:
        >>> residues, index = residue_plan(ShiftSet.from_list([(0, 0), (8, 0), (1, 9), (-7, 1)]), (8, 8))
        >>> residues.as_tuples(), index.tolist()
        ([(0, 0), (1, 1)], [0, 0, 1, 1])
    """
    offsets = shift_set.offsets.round().long()
    res = offsets.remainder(torch.tensor(stride))
    unique, index = torch.unique(res, dim=0, return_inverse=True)
    return ShiftSet(unique.to(torch.float64), label=f"residues mod {stride[0]}x{stride[1]}"), index


def certify(model: nn.Module | object, images: Tensor, shift_set: ShiftSet, *, mode: str) -> Certificate:
    """Check the premise of the certificate for ``model`` on ``images`` (a few of them).

    Call inside :func:`shiftlab.measure.runner.measuring` with the images on the model's device
    and dtype. Shape: images ``(N, C, H, W)``. A model that is not an ``nn.Module`` (an ONNX
    graph, ``docs/onnx.md``) fails with the reason: the total stride is read with forward hooks.
    """
    if not isinstance(model, nn.Module):
        return Certificate(False, None, "an ONNX model: the certificate reads the total stride from a torch module's "
                                        "layers (forward hooks), which a graph run by onnxruntime does not have; "
                                        "every shift is run instead")
    if mode != "circular":
        return Certificate(False, None, f"mode {mode!r}: the certificate needs circular shifts (with zero fill or "
                                        "crops the content at the border changes with every shift)")
    if not shift_set.is_integer:
        return Certificate(False, None, "fractional shifts: the certificate needs integer shifts")
    x = images[:CHECK_IMAGES]
    stride = total_stride(model, x)
    if stride is None:
        return Certificate(False, None, "no total stride: the model has no 4-D feature map whose size divides the "
                                        f"{images.shape[-2]}x{images.shape[-1]} input")
    h, w = images.shape[-2:]
    if h % stride[0] or w % stride[1]:  # pragma: no cover (total_stride returns only exact divisors)
        return Certificate(False, stride, f"the {h}x{w} input is not divisible by the total stride {stride}")
    aligned = [(i * stride[0] % h, j * stride[1] % w) for i, j in ((1, 0), (0, 1), (1, 1), (-1, 2), (2, -1))]
    aligned = list(dict.fromkeys(d for d in aligned if d != (0, 0)))
    if not aligned:
        return Certificate(False, stride, f"the total stride {stride} equals the input size: nothing to certify")
    clean = model(x)
    if not isinstance(clean, Tensor) or clean.dim() != 2:
        return Certificate(False, stride, "the model's output is not [N, classes]")
    shifted = model(shift_many(x, torch.tensor(aligned, dtype=torch.float64), "circular").flatten(0, 1))
    scale = clean.abs().max().clamp_min(torch.finfo(clean.dtype).tiny)
    deviation = float((shifted.reshape(len(aligned), *clean.shape) - clean).abs().max() / scale)
    tol = TOLERANCE_EPS * torch.finfo(clean.dtype).eps
    checked = tuple(aligned)
    if deviation > tol:
        return Certificate(False, stride, f"the outputs at shifts by multiples of the total stride {stride} differ from "
                                          f"the unshifted ones by {deviation:.3g} (> {tol:.3g}, relative): the model "
                                          "is not invariant to them (an FC head, zero padding, or a position-dependent "
                                          "layer)", checked, deviation, tol)
    return Certificate(True, stride, f"outputs at {len(checked)} shifts by multiples of {stride} equal the unshifted "
                                     f"ones within {tol:.3g} on {x.shape[0]} images (largest deviation {deviation:.3g})",
                       checked, deviation, tol)
