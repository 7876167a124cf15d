"""Run the study: for every architecture x condition x seed, train (checkpointed, resumable),
measure, and save; then write ``results.json``, ``results.csv`` and the report.

Run directory layout::

    RUN_DIR/config.json        the StudyConfig
    RUN_DIR/checkpoints/KEY/   training checkpoints (one per run, each epoch)
    RUN_DIR/runs/KEY.json      one RunRecord per finished run (a finished run is never redone)
    RUN_DIR/results.json       StudyResults (schema.py); results.csv: one row per run and shift
    RUN_DIR/report.html        the report (shiftlab report RUN_DIR rebuilds it)
"""

from __future__ import annotations

import csv
import io
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

import shiftlab
from shiftlab.data import Canvas, ImageDataset, load
from shiftlab.data.canvas import content_extent
from shiftlab.io import write_json_atomic, write_text_atomic
from shiftlab.study.config import StudyConfig
from shiftlab.study.measurements import measure_model
from shiftlab.study.schema import SCHEMA_VERSION, RunRecord, StudyResults
from shiftlab.training import TrainConfig, train
from shiftlab.zoo import TOTAL_STRIDE, build, count_parameters

__all__ = ["StudyData", "check_run_dir", "prepare_data", "run_study", "run_key", "write_results"]


@dataclass
class StudyData:
    """Centred canvases of the train / test / eval images. Shapes ``[N, C, H, W]``, labels ``[N]``."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    canvas: Canvas
    classes: list[str]


def prepare_data(config: StudyConfig) -> StudyData:
    """Load the dataset and place every image at the centre of a canvas with room to move.

    The canvas leaves ``config.fraction`` of the objects' extent (:func:`content_extent`) free on
    every side, and at least the zoo's total stride S (so shifts by S exist, for the periodicity
    and claim C4), rounded up so its size is a multiple of S. MNIST: 28 -> 48, shifts up to 10.
    """
    train_set: ImageDataset = load(config.data, config.data_root, split="train")
    test_set: ImageDataset = load(config.data, config.data_root, split="test")
    if config.n_train:
        train_set = train_set.head(config.n_train)
    if config.n_test:
        test_set = test_set.head(config.n_test)
    canvas = Canvas.for_content(train_set.images, fraction=config.fraction, multiple_of=TOTAL_STRIDE, min_margin=TOTAL_STRIDE)
    eval_set = test_set.head(config.n_eval)
    return StudyData(
        canvas.centred(train_set.images), train_set.labels,
        canvas.centred(test_set.images), test_set.labels,
        canvas.centred(eval_set.images), eval_set.labels,
        canvas, list(train_set.classes),
    )


def run_key(model: str, condition: str, seed: int) -> str:
    """File-name key of one run."""
    return f"{model}__{condition}__seed{seed}"


def _train_config(config: StudyConfig, condition: str, seed: int, max_shift: int) -> TrainConfig:
    augment = condition == "augmented"
    return TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=seed,
        augment="translate" if augment else "none", max_shift=max_shift if augment else 0,
    )


def _one_run(config: StudyConfig, data: StudyData, out: Path, model_name: str, condition: str, seed: int,
             resume: bool, on_train: Callable | None, on_measure: Callable | None) -> RunRecord:
    max_shift = min(data.canvas.max_shift)
    torch.manual_seed(seed)
    model = build(model_name, num_classes=len(data.classes), in_channels=data.train_x.shape[1], width=config.width,
                  input_size=tuple(data.train_x.shape[-2:]))
    result = train(model, data.train_x, data.train_y, _train_config(config, condition, seed, max_shift),
                   checkpoint_dir=out / "checkpoints" / run_key(model_name, condition, seed), resume=resume,
                   progress=on_train)
    measured = measure_model(model, data.test_x, data.test_y, data.eval_x, data.eval_y, max_shift=max_shift,
                             stride=model.total_stride, n_circular=config.n_circular, n_profile=config.n_profile,
                             progress=on_measure)
    return RunRecord(
        model=model_name, condition=condition, seed=seed, params=count_parameters(model),
        total_stride=model.total_stride, train_seconds=result.seconds, history=result.history, **measured,
    )


def _csv(runs: list[RunRecord]) -> str:
    """Tidy table: one row per run, measurement (canvas / circular) and shift."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", "condition", "seed", "measurement", "dy", "dx", "accuracy", "agreement_with_unshifted",
                     "test_accuracy", "consistency", "params", "train_seconds"])
    for r in runs:
        for kind in ("canvas", "circular"):
            res = r[kind]
            for (dy, dx), acc, agree in zip(res["shifts"], res["accuracy_by_shift"], res["clean_consistency_by_shift"]):
                writer.writerow([r["model"], r["condition"], r["seed"], kind, dy, dx, f"{acc:.6g}", f"{agree:.6g}",
                                 f"{r['test_accuracy']:.6g}", f"{res['consistency']:.6g}", r["params"],
                                 f"{r['train_seconds']:.3f}"])
    return buf.getvalue()


def write_results(out: Path, config: StudyConfig, meta: dict, runs: list[RunRecord]) -> StudyResults:
    """Write ``results.json`` and ``results.csv`` atomically; return the results."""
    results = StudyResults(schema_version=SCHEMA_VERSION, config=config.to_dict(), meta=meta, runs=runs)  # type: ignore[typeddict-item]
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.csv", _csv(runs))
    return results


def _hardware() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {platform.system()} {platform.release()}"


def check_run_dir(config: StudyConfig, out: Path, resume: bool) -> None:
    """Raise when ``out`` holds another study (without ``resume``) or one with another config."""
    saved = out / "config.json"
    if not saved.exists():
        return
    if not resume:
        raise FileExistsError(f"{out} already holds a study; pass --resume to continue it, or choose another --out")
    old = json.loads(saved.read_text())
    if old != config.to_dict():
        diff = sorted(k for k in set(old) | set(config.to_dict()) if old.get(k) != config.to_dict().get(k))
        raise ValueError(f"--resume with a different configuration than {saved} (differs in: {', '.join(diff)}); "
                         "use the same options or another --out")


def run_study(
    config: StudyConfig,
    out: str | Path,
    *,
    resume: bool = False,
    on_run: Callable[[str, int, int], None] | None = None,
    on_train: Callable | None = None,
    on_measure: Callable[[int, int], None] | None = None,
) -> StudyResults:
    """Train and measure every run of ``config`` into ``out``; returns the results.

    With ``resume=True`` finished runs are read back and unfinished ones continue from their
    last checkpointed epoch; the config must then equal the saved one. Without it, ``out``
    must not hold an earlier study.
    """
    out = Path(out)
    check_run_dir(config, out, resume)
    write_json_atomic(out / "config.json", config.to_dict())
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    data = prepare_data(config)
    jobs = [(m, c, s) for m in config.models for c in config.conditions for s in range(config.seeds)]
    runs: list[RunRecord] = []
    for i, (model_name, condition, seed) in enumerate(jobs):
        key = run_key(model_name, condition, seed)
        if on_run:
            on_run(key, i, len(jobs))
        record_path = out / "runs" / f"{key}.json"
        if resume and record_path.exists():
            runs.append(json.loads(record_path.read_text()))
            continue
        record = _one_run(config, data, out, model_name, condition, seed, resume, on_train, on_measure)
        write_json_atomic(record_path, record)
        runs.append(record)
    h, w = data.canvas.canvas_size
    meta = {
        "dataset": config.data, "n_train": int(data.train_x.shape[0]), "n_test": int(data.test_x.shape[0]),
        "n_eval": int(data.eval_x.shape[0]), "object_size": list(data.canvas.object_size),
        "object_extent": list(content_extent(data.train_x)), "canvas_size": [h, w],
        "max_shift": int(min(data.canvas.max_shift)), "classes": data.classes, "hardware": _hardware(),
        "torch_version": torch.__version__, "shiftlab_version": shiftlab.__version__, "started": started,
        "seconds": time.perf_counter() - t0,
    }
    return write_results(out, config, meta, runs)
