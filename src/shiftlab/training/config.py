"""Training configuration and result records.

Both are plain dataclasses with a JSON-safe ``to_dict()``; the checkpoint stores ``to_dict()``
output (plain ``dict``/``list``/``int``/``float``/``str``) so it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

AUGMENTATIONS = ("none", "translate")
#: Learning-rate schedules: ``constant``, or ``cosine`` (per step from ``lr`` down to 0 at the last step).
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    The optimiser is :class:`torch.optim.AdamW` (decoupled weight decay, Loshchilov & Hutter);
    with ``weight_decay=0`` it is identical to Adam. The learning rate is constant
    (``schedule="constant"``: ``epochs`` may then grow when a run is resumed) or follows a cosine
    from ``lr`` at the first step to 0 after the last (``schedule="cosine"``: the learning rate of
    step ``t`` of ``T = epochs * steps_per_epoch`` is ``lr * (1 + cos(pi * t / T)) / 2``, a
    function of the step alone, so a resumed run repeats it exactly; ``epochs`` is part of the
    schedule and may not change on resume).

    Args:
        epochs: number of passes over the training set (>= 1).
        batch_size: samples per optimisation step (>= 1); the last batch of an epoch may be smaller.
        lr: AdamW learning rate (> 0).
        weight_decay: AdamW decoupled weight decay (>= 0).
        seed: non-negative seed of the shuffling/augmentation/dropout random streams.
        augment: ``"none"`` or ``"translate"`` (per-sample random zero-filled shift; masks move
            with their images by the same offset, the vacated pixels becoming class 0).
        max_shift: for ``augment="translate"``, shifts (dy, dx) are drawn uniformly from
            ``[-max_shift, max_shift]^2`` (must be >= 1); must be 0 for ``augment="none"``.
        precise_bn: recompute BatchNorm statistics exactly over up to 2,048 training images with
            the epoch's augmentation (see :mod:`.precise_bn`) at the end of the last epoch (the
            ``epochs``-th, or the one that reaches ``target_accuracy``), and of every epoch when
            validation data is given. Train-mode steps use batch statistics, so skipping the
            intermediate recounts changes no weight; it saves ~15% of the training time. An
            intermediate checkpoint holds the running (momentum) statistics.
        target_accuracy: the training accuracy (``train_acc``: over an epoch's batches, in train
            mode, with its augmentation: a conservative estimate of the final weights' accuracy;
            for masks the pixel accuracy) that counts as converged (``TrainResult.converged``:
            the last epoch reached it). With ``stop_at_target`` training stops after the first
            epoch that reaches it (``epochs`` is then the maximum); without, every run trains all
            ``epochs`` (a fixed budget) and the target only flags. ``None``: no target. See
            ``docs/study.md`` ("Training budget").
        schedule: one of :data:`SCHEDULES`.
        stop_at_target: stop at ``target_accuracy`` (True) or train the whole budget (False).

    Example:
        >>> TrainConfig(epochs=2, augment="translate", max_shift=2).to_dict()["max_shift"]
        2
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    augment: str = "none"
    max_shift: int = 0
    precise_bn: bool = True
    target_accuracy: float | None = None
    schedule: str = "constant"
    stop_at_target: bool = True

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(
            self.augment in AUGMENTATIONS,
            f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}",
        )
        _require(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.target_accuracy is not None:
            _require(0 < self.target_accuracy <= 1,
                     f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if self.augment == "translate":
            _require(
                self.max_shift >= 1, f"augment='translate' needs max_shift >= 1, got {self.max_shift}"
            )
        else:
            _require(
                self.max_shift == 0,
                f"max_shift={self.max_shift} has no effect with augment='none'; set it to 0",
            )

    def to_dict(self) -> dict:
        """Return the fields as a plain, JSON-safe dict."""
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`shiftlab.training.train`.

    Attributes:
        converged: ``True`` when the last completed epoch reached ``config.target_accuracy``
            (with ``stop_at_target``, training stopped there), ``False`` when it did not (all
            epochs ran), ``None`` without a target.
        history: one dict per completed epoch with keys ``epoch`` (1-based), ``train_loss``
            (mean cross-entropy over the epoch's samples; for masks over their pixels),
            ``train_acc`` (accuracy on the augmented training batches, in train mode), ``val_acc``
            (only when validation data was given; eval mode) and ``seconds`` (wall time of the
            epoch's training and validation, not of writing its checkpoint).
        epochs_completed: number of completed epochs (``len(history)``).
        seconds: total training wall time, summed over all epochs including those run before a resume.
        resumed_from: the epoch the run was resumed from, or ``None`` if it started from scratch.
        device: where it trained (``"cpu"``, ``"cuda:0"``, ...).

    Accuracies are shares of correctly classified images for class labels ``[N]``, and of
    correctly classified pixels for masks ``[N, H, W]`` (correct pixels / ``(N * H * W)``,
    every pixel counting once, background included).
    """

    history: list[dict] = field(default_factory=list)
    epochs_completed: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    converged: bool | None = None
    device: str = "cpu"

    def to_dict(self) -> dict:
        """Return the result as a plain, JSON-safe dict."""
        return {
            "history": [dict(row) for row in self.history],
            "epochs_completed": self.epochs_completed,
            "seconds": self.seconds,
            "resumed_from": self.resumed_from,
            "converged": self.converged,
            "device": self.device,
        }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
