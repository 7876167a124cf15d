"""One job of the study: train one zoo model under one condition with one seed, measure it, save it.

A job is self-contained and single-threaded (the runner sets one torch thread per worker), so
its results do not depend on which worker ran it or how many there were.
"""

from __future__ import annotations

import functools
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from shiftlab.io import check_inside, write_json_atomic
from shiftlab.nn import LearnedPool2d, alias_fraction
from shiftlab.study.conditions import (
    condition,
    probe_eval_set,
    probe_train_set,
    select_classes,
    split_classes,
)
from shiftlab.study.config import StudyConfig
from shiftlab.study.data import StudyData
from shiftlab.study.measurements import (
    correct_per_image,
    explore,
    layer_profile,
    measure_canvas,
    probe_correct,
    study_shifts,
)
from shiftlab.study.records import RunRecord, TrainingRecord, save_per_image
from shiftlab.study.shift_bits import save_shift_bits
from shiftlab.training import ProgressEvent, TrainConfig, TrainResult, train
from shiftlab.training.checkpoint import CheckpointError
from shiftlab.zoo import ZooNet, build, info, spec

__all__ = ["Job", "Progress", "bits_path", "job_macs", "record_paths", "run_job"]

#: ``progress(key, stage, done, total)``: a job's progress (stage "train", "head" or "measure").
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class Job:
    """One run of the study: a zoo model, a condition, a seed; ``width`` set only for the capacity
    sweep's runs (None: the study's main width)."""

    model: str
    condition: str
    seed: int
    width: int | None = None

    @property
    def key(self) -> str:
        """File-name key, ``MODEL__CONDITION__seedN`` (``MODEL__CONDITION__wW__seedN`` in the sweep)."""
        width = "" if self.width is None else f"__w{self.width}"
        return f"{self.model}__{self.condition}{width}__seed{self.seed}"

    def width_in(self, config: StudyConfig) -> int:
        """The width this job's model is built with."""
        return config.width if self.width is None else self.width

    @classmethod
    def from_key(cls, key: str) -> Job:
        """Inverse of :attr:`key`; ``ValueError`` for a name that is not a run key."""
        match = _KEY.fullmatch(key)
        if match is None:
            raise ValueError(f"{key!r} is not a study run (expected MODEL__CONDITION__seedN or MODEL__CONDITION__wW__seedN)")
        width = match["width"]
        return cls(match["model"], match["condition"], int(match["seed"]), None if width is None else int(width))


_KEY = re.compile(r"(?P<model>\w+?)__(?P<condition>\w+?)(?:__w(?P<width>\d+))?__seed(?P<seed>\d+)")


@functools.cache
def job_macs(model: str, width: int, canvas: tuple[int, int], in_channels: int = 1, n_classes: int = 10) -> int:
    """Multiply-adds of one forward pass of zoo ``model`` at ``width`` on a ``canvas`` input: a
    job's cost, for ordering the jobs and for the time-left estimate (memoised: every seed and
    condition of a model costs the same)."""
    net = build(model, num_classes=n_classes, in_channels=in_channels, width=width, input_size=canvas)
    return info(net, canvas).macs


def bits_path(out: Path, key: str) -> Path:
    """``runs/KEY.shifts.npz``: the run's per-image, per-shift bits (:mod:`shiftlab.study.shift_bits`)."""
    return out / "runs" / f"{key}.shifts.npz"


def record_paths(out: Path, key: str) -> tuple[Path, Path]:
    """``(runs/KEY.json, runs/KEY.npz)`` of a run in run directory ``out``."""
    return out / "runs" / f"{key}.json", out / "runs" / f"{key}.npz"


@dataclass
class _Task:
    """What a condition trains on and is measured on. Shapes ``(N, C, H, W)`` / ``(N,)``."""

    train_x: Tensor
    train_y: Tensor
    eval_x: Tensor
    eval_y: Tensor
    test_x: Tensor
    test_y: Tensor
    n_classes: int


def _task(config: StudyConfig, data: StudyData, job: Job) -> _Task:
    cond = condition(job.condition)
    if cond.probe:
        train_x, train_y = probe_train_set(data.train_x, config.probe_offset, job.seed)
        eval_x, eval_y = probe_eval_set(data.eval_x, config.probe_offset)
        test_x, test_y = probe_eval_set(data.test_x, config.probe_offset)
        return _Task(train_x, train_y, eval_x, eval_y, test_x, test_y, 2)
    if cond.transfer:
        _, second = split_classes(len(data.classes))
        return _Task(*select_classes(data.train_x, data.train_y, second), *select_classes(data.eval_x, data.eval_y, second),
                     *select_classes(data.test_x, data.test_y, second), len(second))
    return _Task(data.train_x, data.train_y, data.eval_x, data.eval_y, data.test_x, data.test_y, len(data.classes))


def _build(config: StudyConfig, data: StudyData, job: Job, n_classes: int, seed: int,
           device: torch.device) -> ZooNet:
    padding = "circular" if condition(job.condition).circular_padding else config.padding
    model = build(job.model, num_classes=n_classes, in_channels=data.train_x.shape[1], width=job.width_in(config),
                  input_size=data.canvas.canvas_size, padding_mode=padding, seed=seed)
    # channels-last: the same numbers on every run, and pooling/BN at full resolution run ~1.7x faster on CPU
    # Module.to takes memory_format (documented); torch's type stub omits it.
    return model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]


def _epoch_progress(progress: Progress | None, key: str, stage: str) -> Callable[[ProgressEvent], None] | None:
    if progress is None:
        return None

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "epoch":
            progress(key, stage, event.epoch, event.epochs)

    return on_event


def _train(model: nn.Module, x: Tensor, y: Tensor, config: StudyConfig, seed: int, *, epochs: int,
           target: float | None, max_shift: int, checkpoint_dir: Path, resume: bool,
           on_epoch: Callable[[ProgressEvent], None] | None) -> TrainResult:
    """Train on the model's device (the data stay on the CPU; batches move)."""
    train_config = TrainConfig(epochs=epochs, batch_size=config.batch_size, lr=config.lr, seed=seed,
                               augment="translate" if max_shift else "none", max_shift=max_shift,
                               target_accuracy=target, schedule=config.schedule, stop_at_target=config.stop_at_target)
    return train(model, x, y, train_config, checkpoint_dir=checkpoint_dir, resume=resume, progress=on_epoch)


def _training_record(result: TrainResult, target: float | None, config: StudyConfig,
                     head: TrainResult | None = None) -> TrainingRecord:
    last = (head or result).history[-1]
    return TrainingRecord(
        epochs=result.epochs_completed, converged=(head or result).converged, target_accuracy=target,
        final_train_accuracy=float(last["train_acc"]), final_train_loss=float(last["train_loss"]),
        seconds=result.seconds + (head.seconds if head else 0.0), history=result.history,
        head_history=head.history if head else [], stopped_at_target=config.stop_at_target,
    )


def _train_job(config: StudyConfig, data: StudyData, job: Job, task: _Task, out: Path, resume: bool,
               progress: Progress | None, device: torch.device) -> tuple[ZooNet, TrainingRecord]:
    cond = condition(job.condition)
    ckpt = out / "checkpoints" / job.key
    check_inside(ckpt, out)  # training writes its checkpoints there
    if cond.probe:
        model = _build(config, data, job, task.n_classes, job.seed, device)
        result = _train(model, task.train_x, task.train_y, config, job.seed, epochs=config.probe_epochs, target=None,
                        max_shift=0, checkpoint_dir=ckpt, resume=resume,
                        on_epoch=_epoch_progress(progress, job.key, "train"))
        return model, _training_record(result, None, config)
    target = config.target_accuracy
    shift = {"none": 0, "range": config.augment_range, "canvas": data.max_shift}[cond.augment]
    if not cond.transfer:
        model = _build(config, data, job, task.n_classes, job.seed, device)
        result = _train(model, task.train_x, task.train_y, config, job.seed, epochs=config.max_epochs, target=target,
                        max_shift=shift, checkpoint_dir=ckpt, resume=resume,
                        on_epoch=_epoch_progress(progress, job.key, "train"))
        return model, _training_record(result, target, config)
    first, second = split_classes(len(data.classes))
    model = _build(config, data, job, len(first), job.seed, device)
    trunk_x, trunk_y = select_classes(data.train_x, data.train_y, first)
    trunk = _train(model, trunk_x, trunk_y, config, job.seed, epochs=config.max_epochs, target=target, max_shift=shift,
                   checkpoint_dir=ckpt / "trunk", resume=resume, on_epoch=_epoch_progress(progress, job.key, "train"))
    with torch.inference_mode():  # the frozen trunk's features of the second half's centred images
        features = torch.cat([model.features(chunk.to(device)).cpu() for chunk in task.train_x.split(256)])
    head = _build(config, data, job, task.n_classes, job.seed + 1, device).head
    head_result = _train(head, features, task.train_y, config, job.seed, epochs=config.max_epochs, target=target,
                         max_shift=0, checkpoint_dir=ckpt / "head", resume=resume,
                         on_epoch=_epoch_progress(progress, job.key, "head"))
    model.head = head
    model.num_classes = task.n_classes
    return model.eval(), _training_record(trunk, target, config, head_result)


def _nan_mean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def shown_in_explorer(config: StudyConfig, job: Job) -> bool:
    """Whether the report's shift explorer shows ``job`` (``docs/explorer.md``): seed 0 at the
    study's width, not a transfer run (whose new head has other classes), so only those runs record
    its data and results.json stays small."""
    return job.seed == 0 and job.width_in(config) == config.width and not condition(job.condition).transfer


def stage_alias_fractions(model: nn.Module) -> list[float] | None:
    """Per :class:`~shiftlab.nn.LearnedPool2d` of ``model`` (one a stage in the zoo), the mean over
    its channels of the share of filter energy above the new Nyquist frequency
    (:func:`shiftlab.nn.alias_fraction`); None when the model has no learned downsampling."""
    pools = [m for m in model.modules() if isinstance(m, LearnedPool2d)]
    if not pools:
        return None
    return [float(alias_fraction(p.weight.detach().cpu(), p.stride).nanmean()) for p in pools]


def set_aside_checkpoints(directory: Path) -> list[Path]:
    """Rename every ``checkpoint.pt`` under ``directory`` to ``checkpoint.pt.damaged`` (kept for a
    look, never read again); return the new paths."""
    moved = []
    for path in sorted(directory.rglob("checkpoint.pt")):
        target = path.with_name(path.name + ".damaged")
        path.replace(target)
        moved.append(target)
    return moved


def run_job(config: StudyConfig, data: StudyData, job: Job, out: Path, *, resume: bool = False,
            progress: Progress | None = None, device: str | torch.device = "cpu") -> RunRecord:
    """Train and measure ``job`` on ``device``, write ``runs/KEY.json`` and ``runs/KEY.npz``,
    return the record.

    Checkpoints go to ``out/checkpoints/KEY/`` after every epoch; with ``resume`` an interrupted
    training continues from its last epoch, and a checkpoint that cannot be used (damaged, or
    from another configuration) is set aside (:func:`set_aside_checkpoints`, with a warning) and
    the model trains again from the start.
    """
    start = time.perf_counter()
    task = _task(config, data, job)
    try:
        model, training = _train_job(config, data, job, task, out, resume, progress, torch.device(device))
    except CheckpointError as err:
        if not resume:
            raise
        moved = set_aside_checkpoints(out / "checkpoints" / job.key)
        warnings.warn(f"{job.key}: {err} -- moved to {', '.join(map(str, moved))}; training this model again "
                      "from the start (seeded: the same result as an uninterrupted run)", UserWarning, stacklevel=2)
        model, training = _train_job(config, data, job, task, out, False, progress, torch.device(device))
    model.eval()
    zoo_spec = spec(job.model)
    per_image: dict[str, np.ndarray] = {}
    profile = periodicity = equivariance = explorer = None
    if condition(job.condition).probe:
        per_image["probe_accuracy"] = probe_correct(model, task.eval_x, task.eval_y)
    else:
        on_chunk = None if progress is None else (lambda done, total: progress(job.key, "measure", done, total))
        measured = measure_canvas(model, task.eval_x, task.eval_y,
                                  shifts=study_shifts(model.total_stride, data.max_shift, config.augment_range,
                                                      config.shift_set),
                                  n_classes=task.n_classes, stride=model.total_stride, in_range=config.augment_range,
                                  progress=on_chunk)
        per_image.update(measured.per_image)
        save_shift_bits(bits_path(out, job.key), measured.bits, root=out)
        profile, periodicity = measured.profile, measured.periodicity
        equivariance = layer_profile(model, task.eval_x[: config.n_profile], model.total_stride)
        if shown_in_explorer(config, job):
            explorer = explore(model, task.eval_x, task.eval_y, radius=data.max_shift)
    per_image["test_accuracy"] = correct_per_image(model, task.test_x, task.test_y)  # its mean: test accuracy
    summary = {name: _nan_mean(values) for name, values in per_image.items()}
    model_info = info(model, data.canvas.canvas_size)
    record = RunRecord(
        key=job.key, model=job.model, downsampling=zoo_spec.downsampling, head=zoo_spec.head,
        padding="circular" if condition(job.condition).circular_padding else config.padding,
        condition=job.condition, seed=job.seed, width=job.width_in(config), params=model_info.params, macs=model_info.macs,
        receptive_field=model_info.receptive_field, total_stride=model.total_stride, training=training,
        summary=summary,
        profile=profile, periodicity=periodicity, equivariance=equivariance, explorer=explorer,
        seconds=time.perf_counter() - start, alias_fraction=stage_alias_fractions(model),
    )
    json_path, npz_path = record_paths(out, job.key)
    save_per_image(npz_path, per_image, root=out)
    write_json_atomic(json_path, record.to_dict(), root=out)  # written last: its presence marks the run finished
    return record
