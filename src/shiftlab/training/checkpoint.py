"""Atomic, versioned training checkpoints that load with ``torch.load(weights_only=True)``.

One file, ``<checkpoint_dir>/checkpoint.pt``, holds the state after the last completed epoch:
model ``state_dict`` (parameters and buffers), optimiser ``state_dict``, the epoch, the history,
the config as a plain dict, fingerprints of the data, and a format tag and version. It is written
to a temporary file in the same directory, flushed and fsync'ed, then moved over the old file with
``os.replace`` (atomic on POSIX and Windows), so an interruption at any moment leaves either the
previous complete checkpoint or the new complete one, never a partial file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from shiftlab.io import write_atomic

FORMAT = "shiftlab.training.checkpoint"
VERSION = 1
FILENAME = "checkpoint.pt"
_RESTART_HINT = "delete it, or train without resume (CLI: without --resume) to start over"


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, not a shiftlab checkpoint, or incompatible with the run."""


@dataclass
class Checkpoint:
    """The state after ``epoch`` completed epochs; every field is ``weights_only``-loadable.

    Attributes:
        epoch: number of completed epochs (>= 1).
        model: the model's ``state_dict()``.
        optimizer: the optimiser's ``state_dict()``.
        history: one plain dict per completed epoch (see :class:`TrainResult`).
        config: :meth:`TrainConfig.to_dict` of the run.
        data: fingerprints ``{"train": str, "val": str | None}`` of the data (see :func:`fingerprint`).
        threads: ``torch.get_num_threads()`` of the run that wrote it (None in checkpoints from
            before it was recorded): a resumed run with another count agrees with the
            uninterrupted one to float rounding only.
    """

    epoch: int
    model: dict[str, Tensor]
    optimizer: dict
    history: list[dict]
    config: dict
    data: dict
    threads: int | None = None

    def to_payload(self) -> dict:
        """Return the dict that is written to disk, tagged with the format and version."""
        state = {item.name: getattr(self, item.name) for item in fields(self)}
        return {"format": FORMAT, "version": VERSION, **state}


def checkpoint_path(directory: str | Path) -> Path:
    """Return the checkpoint file inside ``directory``."""
    return Path(directory) / FILENAME


def fingerprint(images: Tensor, labels: Tensor) -> str:
    """Return a SHA-256 over the shapes, dtypes and bytes of a dataset.

    Shape:
        - images, labels: any shapes and dtypes, e.g. class labels ``[N]`` or masks ``[N, H, W]``
          (hashed as their raw CPU bytes)
    """
    digest = hashlib.sha256()
    for tensor in (images, labels):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temp file in the same dir, fsync, ``os.replace``)."""
    write_atomic(path, lambda handle: torch.save(checkpoint.to_payload(), handle))


_FIELD_TYPES = {"epoch": int, "model": dict, "optimizer": dict, "history": list, "config": dict, "data": dict}


def load_checkpoint(path: Path) -> Checkpoint:
    """Read and structurally validate the checkpoint at ``path``.

    Raises:
        CheckpointError: the file is truncated, corrupt, not a shiftlab training checkpoint, or
            of a newer format version. The message names the file and how to start over.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... on bad files
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated or corrupt, or not a weights-only "
            f"checkpoint ({type(err).__name__}); {_RESTART_HINT}"
        ) from err
    _check_payload(payload, path)
    threads = payload.get("threads")
    return Checkpoint(**{key: payload[key] for key in _FIELD_TYPES},
                      threads=threads if isinstance(threads, int) and not isinstance(threads, bool) else None)


def _check_payload(payload: object, path: Path) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a shiftlab training checkpoint; {_RESTART_HINT}")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}, this shiftlab reads up to {VERSION}; "
            f"upgrade shiftlab or {_RESTART_HINT}"
        )
    for key, kind in _FIELD_TYPES.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path} is missing a valid {key!r} entry; {_RESTART_HINT}")
    if payload["epoch"] < 1 or len(payload["history"]) != payload["epoch"]:
        raise CheckpointError(f"{path} has an inconsistent epoch count and history; {_RESTART_HINT}")


#: Fields added to ``TrainConfig`` after checkpoints were first written, with the value that
#: reproduces how those checkpoints were trained.
_LEGACY_DEFAULTS = {"schedule": "constant", "stop_at_target": True}


def check_compatible(checkpoint: Checkpoint, config: dict, data: dict, path: Path) -> None:
    """Raise ``CheckpointError`` (a ``ValueError``) if the run cannot continue from ``checkpoint``.

    Every config field except ``epochs`` must match (``epochs`` may grow under a constant
    learning rate, where more epochs do not change the earlier ones; under a schedule it is part
    of every step's learning rate and must match too), ``epochs`` may not be below the
    completed epochs, and the training/validation data must be the same. A field the checkpoint
    does not have (written before the field existed) counts as its default.
    """
    saved = {**_LEGACY_DEFAULTS, **checkpoint.config}
    growable = () if config.get("schedule", "constant") != "constant" else ("epochs",)
    differing = sorted(key for key in config.keys() | saved.keys()
                       if key not in growable and config.get(key) != saved.get(key))
    if differing:
        details = "; ".join(f"{key}: checkpoint {checkpoint.config.get(key)!r}, given {config.get(key)!r}"
                            for key in differing)
        raise CheckpointError(
            f"config differs from checkpoint {path} in {', '.join(differing)} ({details}); "
            f"resume with the checkpoint's settings, or {_RESTART_HINT}"
        )
    if checkpoint.epoch > config["epochs"]:
        raise CheckpointError(
            f"checkpoint {path} already has {checkpoint.epoch} epochs completed, more than the "
            f"requested epochs={config['epochs']}; raise epochs, or {_RESTART_HINT}"
        )
    for split in sorted(data.keys() | checkpoint.data.keys()):
        if data.get(split) != checkpoint.data.get(split):
            raise CheckpointError(
                f"the {split} data differ from those checkpoint {path} was trained on; "
                f"resume with the same data, or {_RESTART_HINT}"
            )


def restore(checkpoint: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Load the checkpoint's model and optimiser state in place.

    Raises:
        CheckpointError: the state does not fit ``model`` (a different architecture).
    """
    try:
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model (different architecture?): {err}; {_RESTART_HINT}"
        ) from err
