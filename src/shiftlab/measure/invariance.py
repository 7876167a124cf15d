"""Shift invariance of a classifier's predictions (``docs/definitions.md``, "Invariance metrics").

For images ``x_1..x_N`` and a shift set ``S`` (used uniformly), with top-1 class ``c``:

- **consistency** = mean over images of ``sum_k (n_k / |S|)^2``, ``n_k`` the number of shifts in
  ``S`` at which the image is classified ``k``: exactly the probability that two shifts drawn
  independently from ``U(S)`` agree (Zhang 2019's consistency, computed without sampling);
- **clean consistency** = ``P_{a ~ U(S)}[c(T_a x) = c(x)]``, also per shift;
- **accuracy** (unshifted), **accuracy by shift** ``acc(d)``, **mean shifted accuracy**;
- **worst-case accuracy** = fraction of images classified correctly at *every* ``d`` in ``S``;
- **flip rate** = ``P[c(T_d x) != c(T_{d+e} x)]`` over the unit steps ``e`` inside ``S``
  (Azulay & Weiss 2019);
- **top-1 probability change** = mean ``|p_{c(x)}(T_d x) - p_{c(x)}(x)|``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from shiftlab.measure.chunks import ProgressFn, count_chunks, shifted_chunks, transform
from shiftlab.measure.runner import measuring, model_device, model_dtype
from shiftlab.measure.shiftsets import ShiftSet, ShiftSpec, as_shift_set
from shiftlab.measure.validation import check_finite_output, check_images, check_labels

__all__ = ["InvarianceResult", "invariance", "consistency_from_predictions"]


@dataclass
class InvarianceResult:
    """Invariance of a classifier over a shift set. ``accuracy*`` fields are None without labels.

    ``predictions`` (``[N, |S|]`` int64 top-1 classes) is kept for further analysis and left out of
    :meth:`to_dict` unless asked for.
    """

    mode: str
    shift_set: str
    shifts: list[tuple[float, float]]
    n_images: int
    n_classes: int
    consistency: float
    consistency_sem: float
    clean_consistency: float
    top1_prob_change: float
    flip_rate: float | None
    clean_consistency_by_shift: list[float] = field(default_factory=list)
    accuracy: float | None = None
    mean_accuracy: float | None = None
    worst_case_accuracy: float | None = None
    accuracy_by_shift: list[float] | None = None
    predictions: Tensor | None = field(default=None, repr=False)

    def to_dict(self, include_predictions: bool = False) -> dict:
        """JSON-safe dict (``json.dumps`` accepts it)."""
        out = asdict(self)
        out["shifts"] = [list(s) for s in self.shifts]
        out["predictions"] = self.predictions.tolist() if include_predictions and self.predictions is not None else None
        if not include_predictions:
            del out["predictions"]
        return out


def consistency_from_predictions(predictions: Tensor, n_classes: int) -> Tensor:
    """Per-image consistency ``sum_k (n_k / S)^2`` from top-1 classes ``[N, S]`` -> ``[N]``."""
    counts = torch.zeros(predictions.shape[0], n_classes, dtype=torch.float64)
    counts.scatter_add_(1, predictions, torch.ones_like(predictions, dtype=torch.float64))
    return ((counts / predictions.shape[1]) ** 2).sum(dim=1)


def _logits(model: nn.Module, batch: Tensor) -> Tensor:
    out = model(batch)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"invariance() needs a classifier whose output is [N, classes]; got {shape} for a batch of "
            f"{batch.shape[0]}. For a dense (map) output use shiftlab.measure.equivariance()"
        )
    check_finite_output(out)
    return out.double()


def invariance(
    model: nn.Module,
    images: Tensor,
    labels: Tensor | None = None,
    *,
    shifts: ShiftSpec = 2,
    mode: str = "circular",
    batch_size: int = 256,
    crop_size: tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
) -> InvarianceResult:
    """Measure how a classifier's predictions change under shifts of its input.

    Args:
        model: classifier mapping ``[B, C, h, w]`` to logits ``[B, K]``. Measured in eval mode under
            ``torch.no_grad``; its modes are restored afterwards.
        images: ``[N, C, H, W]`` floating point. Cast to the model's dtype and device chunk by chunk.
        labels: optional ``[N]`` class indices, for the accuracy fields.
        shifts: int ``m`` (every shift in ``[-m, m]^2``), a list of ``(dy, dx)`` or a ``ShiftSet``.
        mode: ``"circular"``, ``"zeros"``, ``"fourier"`` or ``"crop"`` (Zhang's protocol: the model
            sees ``crop_size`` windows of larger images, displaced by each shift from the centre).
        batch_size: images per forward pass (shifted copies included).
        crop_size: ``(h, w)`` for ``mode="crop"``.
        progress: called as ``progress(done, total)`` after each forward pass.

    Returns:
        :class:`InvarianceResult`.

    Shape:
        - images: ``(N, C, H, W)``; labels: ``(N,)``
        - result.predictions: ``(N, |S|)``

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
        >>> invariance(net, torch.randn(8, 1, 6, 6), shifts=2).consistency
        1.0
    """
    images = check_images(images)
    shift_set = as_shift_set(shifts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    n = images.shape[0]
    if labels is not None:
        labels = check_labels(labels, n)
    h, w = images.shape[-2:]
    if mode == "crop":
        if crop_size is None:
            raise ValueError("mode='crop' needs crop_size=(h, w), the window the model sees")
        transform(images[:1], shift_set.offsets, mode, crop_size)  # raises if a window leaves the image
    else:
        shift_set.check_fits(h, w, mode)
    device, dtype = model_device(model), model_dtype(model)

    preds = torch.empty(n, len(shift_set), dtype=torch.long)
    prob_change = torch.zeros(n, len(shift_set), dtype=torch.float64)
    total = count_chunks(n, len(shift_set), batch_size) + -(-n // batch_size)
    done = 0
    with measuring(model):
        clean_logits = []
        for i0 in range(0, n, batch_size):
            x = images[i0 : i0 + batch_size]
            x0 = transform(x, torch.zeros(1, 2, dtype=torch.float64), mode, crop_size)[0]
            batch_logits = _logits(model, x0.to(device=device, dtype=dtype)).cpu()
            if clean_logits and batch_logits.shape[1] != clean_logits[0].shape[1]:
                raise ValueError(
                    f"the model's output shape depends on the input: {clean_logits[0].shape[1]} classes for one batch, "
                    f"{batch_logits.shape[1]} for another; invariance needs a fixed [N, classes] output"
                )
            clean_logits.append(batch_logits)
            done += 1
            if progress:
                progress(done, total)
        clean_logits_t = torch.cat(clean_logits)
        n_classes = clean_logits_t.shape[1]
        clean_pred = clean_logits_t.argmax(dim=1)
        clean_prob = clean_logits_t.softmax(dim=1).gather(1, clean_pred[:, None])[:, 0]
        for chunk in shifted_chunks(images, shift_set, mode, batch_size, crop_size=crop_size, device=device, dtype=dtype):
            logits = _logits(model, chunk.batch).cpu()
            if logits.shape[1] != n_classes:
                raise ValueError(
                    f"the model's output shape depends on the shift: {n_classes} classes unshifted, "
                    f"{logits.shape[1]} shifted; invariance needs a fixed [N, classes] output"
                )
            logits = logits.reshape(len(chunk.shift_index), len(chunk.image_index), n_classes)
            ii, ss = chunk.image_index, chunk.shift_index
            preds[ii[:, None], ss[None, :]] = logits.argmax(dim=2).T
            p = logits.softmax(dim=2).gather(2, clean_pred[ii][None, :, None].expand(len(ss), -1, 1))[..., 0]
            prob_change[ii[:, None], ss[None, :]] = (p - clean_prob[ii][None, :]).abs().T
            done += 1
            if progress:
                progress(done, total)

    per_image = consistency_from_predictions(preds, n_classes)
    pairs = shift_set.unit_step_pairs()
    flip = None
    if pairs.numel():
        flip = float((preds[:, pairs[:, 0]] != preds[:, pairs[:, 1]]).double().mean())
    result = InvarianceResult(
        mode=mode,
        shift_set=shift_set.label,
        shifts=shift_set.as_tuples(),
        n_images=n,
        n_classes=n_classes,
        consistency=float(per_image.mean()),
        consistency_sem=float(per_image.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0,
        clean_consistency=float((preds == clean_pred[:, None]).double().mean()),
        clean_consistency_by_shift=(preds == clean_pred[:, None]).double().mean(dim=0).tolist(),
        top1_prob_change=float(prob_change.mean()),
        flip_rate=flip,
        predictions=preds,
    )
    if labels is not None:
        correct = preds == labels[:, None]
        result.accuracy = float((clean_pred == labels).double().mean())
        result.mean_accuracy = float(correct.double().mean())
        result.worst_case_accuracy = float(correct.all(dim=1).double().mean())
        result.accuracy_by_shift = correct.double().mean(dim=0).tolist()
    return result
