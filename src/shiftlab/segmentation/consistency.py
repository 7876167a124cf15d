"""Shift equivariance of a segmentation network's output (``docs/definitions.md``, "Segmentation
consistency"; scenes and U-Nets: ``docs/segmentation.md``): for every shift ``d`` of a set, the
prediction for the shifted scene ``f(T_d x)`` against the shifted prediction ``T_d f(x)``, over the
pixels where both are defined.

- ``zeros`` shifts move the scene on its canvas and fill with zeros: the *valid* pixels of ``d`` are
  those whose source pixel ``p - d`` lies inside the canvas (the rest of ``T_d f(x)`` is not
  defined); ``circular`` shifts roll the scene: every pixel is valid.
- *Agreement* (ASSC, Rojas-Gomez et al. 2022's average semantic segmentation consistency) at ``d``:
  the share of valid pixels, over the images, whose predicted class (argmax of the logits) in
  ``f(T_d x)`` equals that in ``T_d f(x)``; *mASSC*: its mean over the non-zero shifts.
- *EQ-T* (StyleGAN3) at ``d``: ``10 log10(peak^2 / MSE)`` of the logits over the valid pixels, with
  ``peak`` the range (max - min) of the unshifted logits; ``inf`` where they match exactly.
- *mIoU* of the unshifted predictions against the masks, and of each shifted prediction against
  the shifted masks (valid pixels): the mean over the classes present (in the masks or the
  predictions) of ``TP / (TP + FP + FN)``, counted over all images of the set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from shiftlab.measure.layer_records import interior_mask
from shiftlab.measure.runner import measuring
from shiftlab.measure.shifts import shift

__all__ = ["SegmentationShifts", "confusion", "image_confusions", "mean_iou", "segmentation_shifts", "valid_pixels"]


def valid_pixels(d: tuple[int, int], hw: tuple[int, int], mode: str) -> Tensor:
    """``[H, W]`` bool: the pixels of ``T_d`` of an ``hw`` map (:func:`~shiftlab.measure.shifts.shift`)
    that hold a value moved from inside the map: under ``zeros`` those whose source ``p - d`` is
    inside (the interior mask with no band, :func:`~shiftlab.measure.layer_records.interior_mask`),
    under ``circular`` every pixel.

    Example:
        >>> valid_pixels((0, 1), (2, 2), "zeros").tolist()
        [[False, True], [False, True]]
    """
    h, w = hw
    if mode == "circular":
        return torch.ones(h, w, dtype=torch.bool)
    if mode != "zeros":
        raise ValueError(f"mode must be 'zeros' or 'circular', got {mode!r}")
    if abs(d[0]) >= h or abs(d[1]) >= w:
        raise ValueError(f"shift {d} moves everything off a {h}x{w} canvas")
    return interior_mask(torch.tensor([d], dtype=torch.float64), hw, 0)[0]


def _logits(model: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """``model`` over ``images`` in batches of ``batch_size``, concatenated."""
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)])


def confusion(predicted: Tensor, target: Tensor, num_classes: int, valid: Tensor | None = None) -> Tensor:
    """``[K, K]`` int64 counts of (target class, predicted class) over the pixels (``valid`` ones).

    Shape:
        - predicted, target: :math:`(N, H, W)` class indices; valid: :math:`(H, W)` bool
    """
    if valid is not None:
        predicted, target = predicted[:, valid], target[:, valid]
    flat = target.reshape(-1) * num_classes + predicted.reshape(-1)
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def mean_iou(counts: Tensor) -> float:
    """The mean over the classes present (a non-zero union) of ``TP / (TP + FP + FN)``, from a
    :func:`confusion` matrix; NaN when no class is present.

    Example:
        >>> mean_iou(torch.tensor([[3, 1], [0, 2]]))  # IoU 3/4 and 2/3
        0.7083333333333333
    """
    tp = counts.diag().double()
    union = counts.sum(0).double() + counts.sum(1).double() - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else math.nan


def image_confusions(predicted: Tensor, target: Tensor, num_classes: int, valid: Tensor | None = None) -> Tensor:
    """``[N, K, K]`` int64: :func:`confusion` of each image on its own (summed over the images it is
    :func:`confusion` of the set).

    Shape:
        - predicted, target: :math:`(N, H, W)` class indices; valid: :math:`(H, W)` bool
    """
    n = predicted.shape[0]
    if valid is not None:
        predicted, target = predicted[:, valid], target[:, valid]
    flat = (torch.arange(n, device=predicted.device).view(n, *([1] * (predicted.dim() - 1))) * num_classes
            + target) * num_classes + predicted
    counts = torch.bincount(flat.reshape(-1), minlength=n * num_classes * num_classes)
    return counts.view(n, num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationShifts:
    """What :func:`segmentation_shifts` measured, one entry per shift (in the order given).

    Attributes:
        shifts: ``(dy, dx)`` per shift.
        mode: ``zeros`` or ``circular``.
        miou: mIoU of the unshifted predictions against the masks.
        miou_by_shift: mIoU of ``f(T_d x)`` against ``T_d`` of the masks (valid pixels).
        agreement_by_shift: ASSC: the share of valid pixels whose class in ``f(T_d x)`` is that of
            ``T_d f(x)``.
        eq_t_db_by_shift: EQ-T of the logits (``inf`` where equal).
        n_images: images measured.
        agreement_per_image: ASSC of each image at each shift (every image has the same valid
            pixels at a shift, so ``agreement_by_shift`` is its mean over the images).
        confusion_centre: :func:`image_confusions` of the unshifted predictions against the masks.
        confusion_shifted: :func:`image_confusions` of ``f(T_d x)`` against ``T_d`` of the masks over
            the valid pixels, summed over the non-zero shifts.
        object_agreement_per_image: the agreement over the valid pixels that either map labels an
            object (class > 0), so that the background, most of a scene, does not dilute it; NaN
            where neither map labels any (``docs/definitions.md``, "Segmentation consistency").

    Shape:
        - agreement_per_image: :math:`(N, S)` float64
        - confusion_centre, confusion_shifted: :math:`(N, K, K)` int64 (rows: mask class, columns: predicted)
        - object_agreement_per_image: :math:`(N, S)` float64
    """

    shifts: list[tuple[int, int]]
    mode: str
    miou: float
    miou_by_shift: list[float]
    agreement_by_shift: list[float]
    eq_t_db_by_shift: list[float]
    n_images: int
    agreement_per_image: Tensor = field(repr=False)
    confusion_centre: Tensor = field(repr=False)
    confusion_shifted: Tensor = field(repr=False)
    object_agreement_per_image: Tensor = field(repr=False)

    @property
    def massc(self) -> float:
        """Mean agreement over the non-zero shifts (NaN without one)."""
        values = [a for d, a in zip(self.shifts, self.agreement_by_shift, strict=True) if d != (0, 0)]
        return sum(values) / len(values) if values else math.nan

    def aligned(self, stride: int) -> list[bool]:
        """Per shift: are both offsets multiples of ``stride`` (a network's total stride)?"""
        return [dy % stride == 0 and dx % stride == 0 for dy, dx in self.shifts]

    @property
    def object_agreement_by_shift(self) -> list[float]:
        """Per shift, the mean object agreement over the images where it is defined (NaN where none is)."""
        values = self.object_agreement_per_image
        defined = ~torch.isnan(values)
        counts = defined.sum(dim=0)
        sums = torch.where(defined, values, torch.zeros_like(values)).sum(dim=0)
        return [float(s / c) if c else math.nan for s, c in zip(sums, counts, strict=True)]

    def to_dict(self) -> dict:
        """The by-shift numbers (not the per-image arrays) as JSON-safe lists (``inf`` EQ-T as ``None``)."""
        return {"shifts": [list(d) for d in self.shifts], "mode": self.mode, "n_images": self.n_images,
                "miou": self.miou, "massc": self.massc, "miou_by_shift": list(self.miou_by_shift),
                "agreement_by_shift": list(self.agreement_by_shift),
                "object_agreement_by_shift": [None if math.isnan(v) else v for v in self.object_agreement_by_shift],
                "eq_t_db_by_shift": [None if math.isinf(v) and v > 0 else v for v in self.eq_t_db_by_shift]}


def segmentation_shifts(model: nn.Module, images: Tensor, masks: Tensor, shifts: Sequence[tuple[int, int]], *,
                        mode: str = "zeros", batch_size: int = 64) -> SegmentationShifts:
    """Measure a segmentation network's shift equivariance and accuracy (module notes).

    The model runs in eval mode under ``torch.inference_mode`` and is restored after, as in
    :func:`shiftlab.equivariance`.

    Args:
        model: maps ``[N, C, H, W]`` to logits ``[N, K, H, W]``.
        images: the scenes.
        masks: their per-pixel classes ``0 .. K - 1``.
        shifts: integer ``(dy, dx)`` shifts.
        mode: ``zeros`` (the scene moves on its canvas) or ``circular``.
        batch_size: images per forward pass.

    Shape:
        - images: :math:`(N, C, H, W)`; masks: :math:`(N, H, W)` int64

    Example:
        >>> from shiftlab.zoo import UNet
        >>> net = UNet("aps", "aps", num_classes=3, width=4, levels=2, padding_mode="circular")
        >>> x, y = torch.rand(2, 1, 16, 16), torch.randint(0, 3, (2, 16, 16))
        >>> res = segmentation_shifts(net, x, y, [(0, 0), (1, 3)], mode="circular")
        >>> res.massc
        1.0
    """
    if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[-2:]) or masks.dtype != torch.long:
        raise ValueError(f"images must be [N, C, H, W] and masks [N, H, W] int64 of the same N, H, W; got "
                         f"{tuple(images.shape)} and {tuple(masks.shape)} {masks.dtype}")
    if images.shape[0] == 0:
        raise ValueError("no images to measure")
    offsets = [(int(dy), int(dx)) for dy, dx in shifts]
    if not offsets:
        raise ValueError("no shifts to measure")
    hw = (int(images.shape[-2]), int(images.shape[-1]))
    valid_by_shift = [valid_pixels(d, hw, mode).to(images.device) for d in offsets]  # checks mode and shifts first
    with measuring(model, warn=False):
        ref = _logits(model, images, batch_size)
        if ref.dim() != 4 or ref.shape[0] != images.shape[0] or ref.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"the model must return logits [N, K, H, W] at the input's size, got {tuple(ref.shape)}")
        k = ref.shape[1]
        if int(masks.max()) >= k or int(masks.min()) < 0:
            raise ValueError(f"masks hold classes outside 0 .. {k - 1} (the model's {k} logits)")
        labels = ref.argmax(dim=1)
        peak = float(ref.max() - ref.min())
        centre = image_confusions(labels, masks, k)
        shifted = torch.zeros_like(centre)
        miou_by, agree_by, object_by, eqt_by = [], [], [], []
        for (dy, dx), valid in zip(offsets, valid_by_shift, strict=True):
            out = _logits(model, shift(images, dy, dx, mode), batch_size)
            target, target_labels, target_masks = (shift(t, dy, dx, mode) for t in (ref, labels, masks))
            predicted = out.argmax(dim=1)
            same = (predicted == target_labels)[:, valid]
            agree_by.append(same.double().mean(dim=1))
            objects = ((predicted != 0) | (target_labels != 0))[:, valid]
            object_by.append((same & objects).sum(dim=1).double() / objects.sum(dim=1).double())  # NaN: no object
            counts = image_confusions(predicted, target_masks, k, valid)
            miou_by.append(mean_iou(counts.sum(0)))
            if (dy, dx) != (0, 0):
                shifted += counts
            mse = float((out - target).square()[..., valid].double().mean())
            eqt_by.append(math.inf if mse == 0 else 10 * math.log10(peak**2 / mse) if peak > 0 else -math.inf)
        per_image, per_image_objects = torch.stack(agree_by, dim=1).cpu(), torch.stack(object_by, dim=1).cpu()
        return SegmentationShifts(offsets, mode, mean_iou(centre.sum(0)), miou_by, per_image.mean(0).tolist(), eqt_by,
                                  int(images.shape[0]), per_image, centre.cpu(), shifted.cpu(), per_image_objects)
