"""Rebuild a trained model of a study run from its checkpoint (for ``shiftlab measure``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shiftlab.data import Canvas
from shiftlab.study.conditions import condition
from shiftlab.study.config import StudyConfig
from shiftlab.study.data import prepare_data
from shiftlab.study.job import Job
from shiftlab.study.results import load_results
from shiftlab.training.checkpoint import checkpoint_path, load_checkpoint
from shiftlab.zoo import ZooNet, build

__all__ = ["StudyModel", "is_study_checkpoint", "load_study_model"]


@dataclass
class StudyModel:
    """A trained study model with what is needed to feed it: its run's config and canvas."""

    model: ZooNet
    key: str
    config: StudyConfig
    canvas: Canvas


def _locate(target: str | Path) -> tuple[Path, Path] | None:
    """``(checkpoint file, run dir)`` when ``target`` is a study checkpoint (its directory or file)."""
    path = Path(target)
    file = checkpoint_path(path) if path.is_dir() else path
    if file.name != "checkpoint.pt" or not file.is_file():
        return None
    run_dir = file.parent.parent.parent  # RUN_DIR/checkpoints/KEY/checkpoint.pt
    return (file, run_dir) if (run_dir / "config.json").is_file() else None


def _is_transfer_run(target: str | Path) -> bool:
    """``RUN_DIR/checkpoints/KEY`` of a transfer run (checkpoints ``KEY/trunk`` and ``KEY/head``)."""
    path = Path(target)
    return path.is_dir() and (path / "trunk").is_dir() and (path.parent.parent / "config.json").is_file()


def is_study_checkpoint(target: str | Path) -> bool:
    """True for ``RUN_DIR/checkpoints/KEY`` or ``RUN_DIR/checkpoints/KEY/checkpoint.pt``."""
    return _locate(target) is not None or _is_transfer_run(target)


def load_study_model(target: str | Path) -> StudyModel:
    """Build the zoo model of a study checkpoint and load its trained weights (``weights_only``)."""
    if _is_transfer_run(target):
        raise ValueError(f"{target} is a transfer run: its trunk and its new head were trained in two phases "
                         "(checkpoints trunk/ and head/), which `shiftlab measure` does not assemble; its measurements "
                         "are in the study's runs/ and report")
    located = _locate(target)
    if located is None:
        raise FileNotFoundError(f"{target} is not a study checkpoint (expected RUN_DIR/checkpoints/MODEL__CONDITION__seedN)")
    file, run_dir = located
    config = StudyConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    key = file.parent.name
    job = Job.from_key(key)
    cond = condition(job.condition)
    if (run_dir / "results.json").is_file():
        meta = load_results(run_dir).meta
        classes, canvas = meta.classes, Canvas(tuple(meta.object_size), tuple(meta.canvas_size))
    else:  # the study has not finished: derive the canvas from the training data, as the study did
        data = prepare_data(config)
        classes, canvas = data.classes, data.canvas
    checkpoint = load_checkpoint(file)
    in_channels = checkpoint.model["features.0.weight"].shape[1]
    n_classes = 2 if cond.probe else len(classes)
    padding = "circular" if cond.circular_padding else config.padding
    model = build(job.model, num_classes=n_classes, in_channels=in_channels, width=job.width_in(config),
                  input_size=canvas.canvas_size, padding_mode=padding)
    model.load_state_dict(checkpoint.model)
    return StudyModel(model.eval(), key, config, canvas)
