"""Seeded, deterministic, checkpointed and resumable training, on the CPU or a GPU, of classifiers
(class labels ``[N]``) and segmenters (per-pixel labels, masks ``[N, H, W]``).

- :func:`train`, :class:`TrainConfig`, :class:`TrainResult`: the training loop (:mod:`.loop`).
- :func:`evaluate`: top-1 accuracy (per image, or per pixel for masks) in eval mode (:mod:`.evaluate`).
- :class:`ProgressEvent`: what ``train(progress=...)`` receives (:mod:`.progress`).
- :class:`CheckpointError`: an unusable or incompatible checkpoint (:mod:`.checkpoint`).
- :func:`translate_batch`: the ``augment="translate"`` shifts, masks moved with their images (:mod:`.augment`).
"""

from .augment import translate_batch
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
    "translate_batch",
]
