"""shiftlab 0.1.0's ``invariance()``, kept as the reference the engine is tested against: a
separate clean pass, then a full ``[N, |S|]`` table of predictions and probability changes,
reduced at the end with float means (the straightforward way, not the engine's sums).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from shiftlab.measure.driver import transform
from shiftlab.measure.invariance import InvarianceResult, consistency_from_predictions
from shiftlab.measure.runner import measuring, model_device, model_dtype
from shiftlab.measure.shiftsets import ShiftSet, as_shift_set
from shiftlab.measure.validation import check_finite_output, check_images, check_labels


@dataclass
class ShiftedChunk:
    """Images ``[s * n, C, h, w]`` = shifts ``shift_index`` (``[s]``) of images ``image_index`` (``[n]``).

    Row ``k * n + i`` holds shift ``shift_index[k]`` of image ``image_index[i]``.
    """

    batch: Tensor
    image_index: Tensor
    shift_index: Tensor


def shifted_chunks(
    images: Tensor,
    shift_set: ShiftSet,
    mode: str,
    batch_size: int,
    *,
    crop_size: tuple[int, int] | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Iterator[ShiftedChunk]:
    """Yield chunks of at most ``max(batch_size, n_shift)`` shifted images covering images x shifts.

    Shape:
        - images: ``(N, C, H, W)``
        - each chunk's batch: ``(s * n, C, h, w)``
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_img = min(images.shape[0], batch_size)
    n_shift = max(1, batch_size // n_img)
    for i0 in range(0, images.shape[0], n_img):
        x = images[i0 : i0 + n_img].to(device=device, dtype=dtype)
        for s0 in range(0, len(shift_set), n_shift):
            offsets = shift_set.offsets[s0 : s0 + n_shift]
            shifted = transform(x, offsets, mode, crop_size)
            yield ShiftedChunk(
                batch=shifted.reshape(-1, *shifted.shape[2:]),
                image_index=torch.arange(i0, i0 + x.shape[0]),
                shift_index=torch.arange(s0, s0 + offsets.shape[0]),
            )



def _logits(model: nn.Module, batch: Tensor) -> Tensor:
    out = model(batch)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"invariance() needs a classifier whose output is [N, classes]; got {shape} for a batch of "
            f"{batch.shape[0]}. For a dense (map) output use shiftlab.equivariance()"
        )
    check_finite_output(out)
    return out.double()


def legacy_invariance(model: nn.Module, images: Tensor, labels: Tensor | None = None, *, shifts=2,
                      mode: str = "circular", batch_size: int = 256, crop_size=None) -> InvarianceResult:
    images = check_images(images)
    shift_set = as_shift_set(shifts)
    n = images.shape[0]
    if labels is not None:
        labels = check_labels(labels, n)
    device, dtype = model_device(model), model_dtype(model)
    preds = torch.empty(n, len(shift_set), dtype=torch.long)
    prob_change = torch.zeros(n, len(shift_set), dtype=torch.float64)
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
