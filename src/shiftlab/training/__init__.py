"""Seeded, deterministic, checkpointed and resumable training (CPU).

- :func:`train`, :class:`TrainConfig`, :class:`TrainResult`: the training loop (:mod:`.loop`).
- :func:`evaluate`: top-1 accuracy in eval mode (:mod:`.evaluate`).
- :class:`ProgressEvent`: what ``train(progress=...)`` receives (:mod:`.progress`).
- :class:`CheckpointError`: an unusable or incompatible checkpoint (:mod:`.checkpoint`).
"""

from .checkpoint import CheckpointError
from .config import TrainConfig, TrainResult
from .evaluate import evaluate
from .loop import train
from .progress import ProgressCallback, ProgressEvent

__all__ = [
    "CheckpointError",
    "ProgressCallback",
    "ProgressEvent",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "train",
]
