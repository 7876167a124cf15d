"""Seeded, deterministic, checkpointed and resumable training of an image classifier (one class
per image) or segmenter (one class per pixel), on the CPU or a GPU (``device=``).

Determinism. Every random draw comes from streams derived from ``(config.seed, epoch)`` alone
(see :mod:`._rng`): a per-epoch ``torch.Generator`` shuffles and augments, and the global
generator, seeded per epoch inside ``torch.random.fork_rng``, serves random layers such as
dropout (the caller's global RNG state is left untouched). So the same config, initial weights
and data give bitwise identical weights, and a run resumed after epoch k repeats exactly what the
uninterrupted run does from epoch k + 1 on.

Bitwise equality assumes the same machine, torch build and ``torch.get_num_threads()``: CPU
kernels are deterministic for a fixed thread count, but a different count can change the
reduction order of float sums. ``torch.use_deterministic_algorithms(True)`` is not set here,
because it is a process-wide switch that belongs to the caller; on CPU it changes no kernel this
loop uses, and training runs unchanged under it.

On a GPU (``docs/definitions.md``, "Devices and determinism"): the data order, augmentation and
dropout draws are the same as on the CPU (they come from CPU generators), but cuDNN's
convolution kernels may choose non-deterministic algorithms, so two GPU runs agree to float
rounding, not bitwise, unless the caller sets ``torch.use_deterministic_algorithms(True)`` (and
``CUBLAS_WORKSPACE_CONFIG=:4096:8``); CPU and GPU runs never agree bitwise.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftlab.data.canvas import random_translate
from shiftlab.measure.runner import resolve_device
from shiftlab.measure.validation import check_module

from ._rng import data_generator, epoch_seeds, seeded_global_rng
from ._validate import check_dataset, check_logits, check_validation_pair
from .augment import translate_batch
from .checkpoint import (
    Checkpoint,
    check_compatible,
    checkpoint_path,
    fingerprint,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from .config import TrainConfig, TrainResult
from .evaluate import evaluate
from .precise_bn import has_batchnorm, recompute_batchnorm
from .progress import ProgressCallback, ProgressEvent


def train(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    config: TrainConfig,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    val_images: Tensor | None = None,
    val_labels: Tensor | None = None,
    progress: ProgressCallback | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train ``model`` in place with AdamW on cross-entropy and return the per-epoch history.

    The model is in train mode while training and is left in eval mode when ``train`` returns
    (also if it raises). Each epoch shuffles the data, optionally applies a random zero-filled
    translation per sample (``config.augment="translate"``; masks move with their images, see
    :func:`.augment.translate_batch`), and takes one step per batch.

    Labels are class indices per image (a classifier) or per pixel (masks, a segmenter). The loss
    is the cross-entropy, averaged over images or over pixels; the accuracies (``train_acc``,
    ``val_acc``, ``config.target_accuracy``) are the share of correctly classified images or,
    for masks, of correctly classified pixels (correct pixels / ``(N * H * W)``).

    Checkpoints. With ``checkpoint_dir`` the state after each epoch is written atomically to
    ``checkpoint_dir/checkpoint.pt`` (see :mod:`.checkpoint`); without ``resume`` an existing
    checkpoint there is overwritten by the new run. With ``resume=True`` the run continues after
    the checkpoint's last completed epoch, restoring weights, buffers, optimiser state and
    history, so it ends with the same weights and numbers as an uninterrupted run; if no
    checkpoint exists yet it starts from scratch; if all ``config.epochs`` are already done it
    returns the saved result at once. With ``config.target_accuracy`` training stops after the
    first epoch whose training accuracy reaches it (also when resuming a run that had reached
    it; with ``stop_at_target=False`` every run trains all ``epochs`` and the target only sets
    ``converged``). An interruption (e.g. ``KeyboardInterrupt``) loses at most the epoch in progress.

    Args:
        model: classifier mapping ``[B, C, H, W]`` to logits ``[B, K]``, or for masks a
            segmenter mapping it to per-pixel logits ``[B, K, H, W]``; on resume its weights are
            replaced by the checkpoint's.
        images, labels: the training set.
        config: hyper-parameters; see :class:`TrainConfig`.
        checkpoint_dir: directory for the checkpoint, or ``None`` for no checkpointing.
        resume: continue from the checkpoint in ``checkpoint_dir`` (requires ``checkpoint_dir``).
        val_images, val_labels: optional validation set, scored after every epoch (``val_acc``).
        progress: called with a :class:`ProgressEvent` after every step and every epoch.
        device: where to train (``"cpu"``, ``"cuda"``, ``"auto"``: CUDA when available);
            default the model's device. The model is moved there and stays there; each batch
            is moved as it is used (the data stay where they are).

    Returns:
        The :class:`TrainResult` over all completed epochs, including any before a resume.

    Raises:
        TypeError, ValueError: malformed inputs (shapes, dtypes, NaN, empty, negative labels,
            masks of another size than the images, ``max_shift`` too large, logits that do not fit
            the labels).
        CheckpointError: (a ``ValueError``) the checkpoint is corrupt or does not match the
            config (other than ``epochs``), the data or the model.
        FloatingPointError: the training loss became NaN/inf; the message names epoch and step.

    Shape:
        - images: ``[N, C, H, W]`` floating point
        - labels: ``[N]`` ``torch.int64`` class labels, or ``[N, H, W]`` ``torch.int64`` masks
        - val_images: ``[M, C, H, W]``; val_labels: ``[M]``, or ``[M, H, W]`` with masks

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.randn(8, 1, 2, 2), torch.arange(8) % 2
        >>> train(model, x, y, TrainConfig(epochs=2, batch_size=4)).epochs_completed
        2
    """
    _check_inputs(model, images, labels, config, val_images, val_labels, checkpoint_dir, resume)
    dev = resolve_device(device, model)
    model.to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    path = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    data = _data_fingerprints(images, labels, val_images, val_labels) if path is not None else {}
    history = _resume(path, model, optimizer, config, data) if resume and path is not None and path.exists() else []
    resumed_from = len(history) if history else None
    steps = math.ceil(len(labels) / config.batch_size)
    try:
        model.train()
        for epoch in range(len(history) + 1, config.epochs + 1):
            if config.stop_at_target and _reached(history, config):
                break
            row = _run_epoch(model, optimizer, images, labels, config, epoch, progress,
                             val_images, val_labels, dev)
            history.append(row)
            if path is not None:
                state = Checkpoint(epoch, model.state_dict(), optimizer.state_dict(), history,
                                   config.to_dict(), data, torch.get_num_threads())
                save_checkpoint(path, state)
            if progress is not None:
                progress(ProgressEvent("epoch", epoch, config.epochs, steps, steps, row["train_loss"], row))
    finally:
        model.eval()
    converged = None if config.target_accuracy is None else _reached(history, config)
    return TrainResult(history, len(history), sum(row["seconds"] for row in history), resumed_from,
                       converged, str(dev))


def _reached(history: list[dict], config: TrainConfig) -> bool:
    """Whether the last completed epoch reached ``config.target_accuracy``."""
    target = config.target_accuracy
    return target is not None and bool(history) and history[-1]["train_acc"] >= target


def _check_inputs(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    config: TrainConfig,
    val_images: Tensor | None,
    val_labels: Tensor | None,
    checkpoint_dir: str | Path | None,
    resume: bool,
) -> None:
    check_module(model)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_dataset(images, labels)
    check_validation_pair(val_images, val_labels, labels)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")
    height, width = images.shape[-2:]
    if config.max_shift >= min(height, width):
        raise ValueError(
            f"max_shift={config.max_shift} must be smaller than the image size {height}x{width}"
        )


def _data_fingerprints(
    images: Tensor, labels: Tensor, val_images: Tensor | None, val_labels: Tensor | None
) -> dict:
    val = fingerprint(val_images, val_labels) if val_images is not None and val_labels is not None else None
    return {"train": fingerprint(images, labels), "val": val}


def _resume(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, data: dict
) -> list[dict]:
    """Restore model and optimiser from the checkpoint at ``path``; return its history."""
    checkpoint = load_checkpoint(path)
    check_compatible(checkpoint, config.to_dict(), data, path)
    restore(checkpoint, model, optimizer, path)
    threads = torch.get_num_threads()
    if checkpoint.threads is not None and checkpoint.threads != threads:
        warnings.warn(f"resuming {path} with {threads} torch thread(s); it was written with {checkpoint.threads}: "
                      "the remaining epochs agree with an uninterrupted run to float rounding only (another "
                      f"thread count can change the order of float sums); torch.set_num_threads({checkpoint.threads}) "
                      "gives identical numbers", UserWarning, stacklevel=3)
    return checkpoint.history


#: Training images used to recompute BatchNorm statistics (at the end of the last epoch; see TrainConfig.precise_bn).
PRECISE_BN_IMAGES = 2048


def _run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    labels: Tensor,
    config: TrainConfig,
    epoch: int,
    progress: ProgressCallback | None,
    val_images: Tensor | None,
    val_labels: Tensor | None,
    device: torch.device,
) -> dict:
    """Train one epoch (then score the validation set) and return its history row. Batches are
    drawn and augmented on the CPU (the same draws on every device), then moved to ``device``."""
    start = time.perf_counter()
    data_seed, model_seed = epoch_seeds(config.seed, epoch)
    generator = data_generator(data_seed)
    batches = torch.randperm(len(labels), generator=generator).split(config.batch_size)
    total_loss, correct = 0.0, 0
    with seeded_global_rng(model_seed):
        for step, index in enumerate(batches, start=1):
            batch_images, batch_labels = images[index], labels[index]
            if config.augment == "translate":
                batch_images, batch_labels = translate_batch(batch_images, batch_labels, config.max_shift, generator)
            batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
            learning_rate = scheduled_lr(config, (epoch - 1) * len(batches) + step - 1, config.epochs * len(batches))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            loss, batch_correct = _step(model, optimizer, batch_images, batch_labels,
                                        f"epoch {epoch}, step {step}/{len(batches)}", config.lr)
            total_loss += loss * len(index)
            correct += batch_correct
            if progress is not None:
                progress(ProgressEvent("step", epoch, config.epochs, step, len(batches), loss))
        accuracy = correct / labels.numel()
        last = epoch == config.epochs or (config.stop_at_target and config.target_accuracy is not None
                                          and accuracy >= config.target_accuracy)
        if config.precise_bn and has_batchnorm(model) and (last or val_images is not None):
            recount = batches[: max(1, PRECISE_BN_IMAGES // config.batch_size)]
            augment = (lambda x: random_translate(x, config.max_shift, generator)) if config.augment == "translate" else None
            recompute_batchnorm(model, [images[index] for index in recount], augment, device)
    row = {"epoch": epoch, "train_loss": total_loss / len(labels), "train_acc": accuracy}
    if val_images is not None and val_labels is not None:
        row["val_acc"] = evaluate(model, val_images, val_labels)
    row["seconds"] = time.perf_counter() - start
    return row


def scheduled_lr(config: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of global step ``step`` (0-based) of ``total_steps`` under ``config.schedule``.

    Example:
        >>> cfg = TrainConfig(lr=1.0, schedule="cosine")
        >>> [round(scheduled_lr(cfg, t, 4), 3) for t in range(4)]
        [1.0, 0.854, 0.5, 0.146]
        >>> scheduled_lr(TrainConfig(lr=0.1), 3, 4)
        0.1
    """
    if config.schedule == "constant":
        return config.lr
    return config.lr * (1 + math.cos(math.pi * step / total_steps)) / 2


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor,
          where: str, lr: float) -> tuple[float, int]:
    """One optimisation step; return the batch loss and number of correct predictions (images,
    or pixels for masks).

    The loss is checked before the update, so a NaN/inf loss raises with the weights of the
    last good step.

    Shape:
        - images: ``[B, C, H, W]``; labels: ``[B]`` or ``[B, H, W]``
        - model output: ``[B, K]`` or ``[B, K, H, W]`` (matching the labels)
    """
    logits = model(images)
    check_logits(logits, labels)
    loss = F.cross_entropy(logits, labels)
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(
            f"training loss became {value} at {where}; try a lower learning rate (lr={lr}) "
            "or check the inputs and model for overflow"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value, int((logits.argmax(dim=1) == labels).sum())
