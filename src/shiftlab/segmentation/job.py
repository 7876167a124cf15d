"""One run of the segmentation study: train a U-Net under a condition with a seed, measure it on
the test scenes at the study's shifts (:mod:`.shift_set`), profile its layers (seed 0), and write
``runs/KEY.json`` (a :class:`SegRunRecord`) and ``runs/KEY.npz`` (its per-image arrays)."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from shiftlab.data.scenes import SceneSet, load_scenes
from shiftlab.io import write_atomic, write_json_atomic
from shiftlab.measure.equivariance import equivariance
from shiftlab.study.job import set_aside_checkpoints
from shiftlab.study.records import RecordError
from shiftlab.training import TrainConfig, train
from shiftlab.training.checkpoint import CheckpointError
from shiftlab.zoo import UNet, info

from .config import SegStudyConfig, seg_condition
from .consistency import segmentation_shifts
from .shift_set import seg_shifts

__all__ = ["PER_IMAGE", "SegData", "SegJob", "SegRunRecord", "load_seg_data", "run_seg_job", "seg_jobs"]

#: Arrays of ``runs/KEY.npz``: ``agreement`` and ``object_agreement`` ``[N, S]`` float32 (ASSC per
#: image and shift, over all valid pixels and over those either map labels an object; NaN: none); per
#: image and class the ``[N, K, 3]`` int32 counts (true positives, false positives, false
#: negatives) of the unshifted predictions (``counts_centre``) and of the shifted ones summed
#: over the non-zero shifts (``counts_shifted``).
PER_IMAGE = ("agreement", "object_agreement", "counts_centre", "counts_shifted")


@dataclass(frozen=True)
class SegJob:
    """One model x condition x seed."""

    model: str
    condition: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.model}__{self.condition}__seed{self.seed}"


def seg_jobs(config: SegStudyConfig) -> list[SegJob]:
    """Every job of ``config``, condition-major."""
    return [SegJob(m, c, s) for c in config.conditions for m in config.models for s in range(config.seeds)]


@dataclass(frozen=True)
class SegData:
    """The study's scenes: the same for every run."""

    train: SceneSet
    test: SceneSet


def load_seg_data(config: SegStudyConfig) -> SegData:
    """Training and test scenes of ``config`` (every object at least ``max_shift`` from the border)."""
    kwargs = dict(canvas_size=config.canvas, margin=config.max_shift)
    return SegData(load_scenes(config.data, "train", config.n_train, **kwargs),  # type: ignore[arg-type]
                   load_scenes(config.data, "test", config.n_test, **kwargs))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SegRunRecord:
    """What one run wrote (``runs/KEY.json``).

    Attributes:
        key, model, condition, seed: the job.
        downsampling, upsampling, padding: the U-Net's factors and its convs' padding.
        params, macs, receptive_field, total_stride: :func:`shiftlab.zoo.info` of the model.
        history: per epoch ``epoch``, ``train_loss``, ``train_acc`` (pixel accuracy), ``seconds``.
        mode: the measured shifts' fill (``zeros`` or ``circular``).
        shifts: the measured ``(dy, dx)``, ``(0, 0)`` first.
        miou: test mIoU of the unshifted predictions.
        miou_by_shift, agreement_by_shift, eq_t_db_by_shift: :class:`~.consistency.SegmentationShifts`
            (EQ-T ``inf`` written as ``None``).
        layers: the per-layer profile (seed 0 only, else empty): per layer ``name``, ``part``
            (``encoder``, ``down``, ``bottleneck``, ``up``, ``decoder``, ``head``), ``stride``,
            the four errors of :class:`~shiftlab.measure.equivariance_result.LayerEquivariance`
            and ``origin`` (:meth:`~shiftlab.measure.equivariance_result.EquivarianceResult.origins`).
        seconds: wall time of the run (training, measurement, profile).
    """

    key: str
    model: str
    condition: str
    seed: int
    downsampling: str
    upsampling: str
    padding: str
    params: int
    macs: int
    receptive_field: int
    total_stride: int
    history: list[dict]
    mode: str
    shifts: list[tuple[int, int]]
    miou: float
    miou_by_shift: list[float]
    agreement_by_shift: list[float]
    eq_t_db_by_shift: list[float | None]
    layers: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shifts"] = [list(s) for s in self.shifts]
        return d

    @classmethod
    def from_dict(cls, d: object, *, source: str = "record") -> SegRunRecord:
        """Inverse of :meth:`to_dict`; :class:`~shiftlab.study.records.RecordError` naming ``source`` when malformed."""
        try:
            if not isinstance(d, dict):
                raise TypeError(f"a JSON object, got {type(d).__name__}")
            record = cls(**{**d, "shifts": [(int(a), int(b)) for a, b in d["shifts"]]})
        except (TypeError, KeyError, ValueError) as err:
            raise RecordError(f"{source} is not a segmentation run record ({err}); delete it to redo that run") from err
        if record.key != SegJob(record.model, record.condition, record.seed).key:
            raise RecordError(f"{source} holds run {record.key!r} under another name; delete it to redo that run")
        return record


def record_paths(out: Path, key: str) -> tuple[Path, Path]:
    """``runs/KEY.json`` and ``runs/KEY.npz`` of ``out``."""
    return out / "runs" / f"{key}.json", out / "runs" / f"{key}.npz"


def _part(name: str) -> str:
    return name.split(".")[0]


def _profile(model: UNet, scenes: Tensor, mode: str) -> list[dict]:
    """Per-layer errors at near, aligned and unaligned shifts (``docs/segmentation.md``, "Per layer")."""
    s = 2**model.levels
    shifts = [(0, 1), (1, 1), (0, s // 2), (s, 0), (s, s), (s, s // 2)]
    result = equivariance(model, scenes, shifts=shifts, mode=mode)
    return [dict(name=layer.name, part=_part(layer.name), stride=int(layer.stride[0]),
                 aligned_error=layer.aligned_error, unaligned_error=layer.unaligned_error,
                 aligned_interior_error=layer.aligned_interior_error,
                 unaligned_interior_error=layer.unaligned_interior_error, origin=origin)
            for layer, origin in zip(result.layers, result.origins(), strict=True)]


def _counts(confusions: Tensor) -> np.ndarray:
    """``[N, K, K]`` confusions -> ``[N, K, 3]`` int32 (TP, FP, FN) per image and class."""
    tp = confusions.diagonal(dim1=1, dim2=2)
    fp, fn = confusions.sum(1) - tp, confusions.sum(2) - tp
    return torch.stack([tp, fp, fn], dim=-1).to(torch.int32).numpy()


def _train(config: SegStudyConfig, data: SegData, job: SegJob, model: UNet, out: Path, resume: bool,
           device: torch.device) -> list[dict]:
    cond = seg_condition(job.condition)
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=job.seed,
                               augment="translate" if cond.augment else "none",
                               max_shift=config.max_shift if cond.augment else 0, schedule="cosine",
                               stop_at_target=False)
    result = train(model, data.train.images, data.train.masks, train_config,
                   checkpoint_dir=out / "checkpoints" / job.key, resume=resume, device=device)
    return [{k: row[k] for k in ("epoch", "train_loss", "train_acc", "seconds")} for row in result.history]


def _build(config: SegStudyConfig, data: SegData, job: SegJob) -> UNet:
    down, up = job.model.removeprefix("unet_").split("_")
    with torch.random.fork_rng():  # seeded initialisation; the caller's global generator is left as it was
        torch.manual_seed(job.seed)
        model = UNet(down, up, num_classes=len(data.train.classes), in_channels=int(data.train.images.shape[1]),
                     width=config.width, levels=config.levels,
                     padding_mode="circular" if seg_condition(job.condition).circular else "zeros")
    # channels-last, as the classification study: 1.35-1.5x faster U-Net training steps on the CPU
    # (width 8, batch 32, 64x64, one thread; measured side by side), the same numbers on every run
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def run_seg_job(config: SegStudyConfig, data: SegData, job: SegJob, out: Path, *, resume: bool = False,
                device: str | torch.device = "cpu") -> SegRunRecord:
    """Train and measure ``job`` (module notes); return its record.

    With ``resume`` an interrupted training continues from its last epoch's checkpoint
    (``checkpoints/KEY/``); a checkpoint that does not fit is set aside and the run starts again.
    """
    start = time.perf_counter()
    model = _build(config, data, job)
    try:
        history = _train(config, data, job, model, out, resume, torch.device(device))
    except CheckpointError as err:
        if not resume:
            raise
        moved = set_aside_checkpoints(out / "checkpoints" / job.key)
        warnings.warn(f"{job.key}: {err} -- moved to {', '.join(map(str, moved))}; training again from the start",
                      UserWarning, stacklevel=2)
        model = _build(config, data, job)
        history = _train(config, data, job, model, out, False, torch.device(device))
    mode = seg_condition(job.condition).mode
    measured = segmentation_shifts(model, data.test.images, data.test.masks, seg_shifts(config.stride), mode=mode)
    layers = _profile(model, data.test.images[: config.n_profile], mode) if job.seed == 0 else []
    model_info = info(model, config.canvas)
    record = SegRunRecord(
        key=job.key, model=job.model, condition=job.condition, seed=job.seed, downsampling=model.downsampling,
        upsampling=model.upsampling, padding="circular" if mode == "circular" else "zeros", params=model_info.params,
        macs=model_info.macs, receptive_field=model_info.receptive_field, total_stride=config.stride,
        history=history, mode=mode, shifts=measured.shifts, miou=measured.miou, miou_by_shift=measured.miou_by_shift,
        agreement_by_shift=measured.agreement_by_shift,
        eq_t_db_by_shift=[None if v == float("inf") else v for v in measured.eq_t_db_by_shift], layers=layers,
        seconds=time.perf_counter() - start)
    json_path, npz_path = record_paths(out, job.key)
    arrays: dict[str, Any] = {"agreement": measured.agreement_per_image.numpy().astype(np.float32),
                              "object_agreement": measured.object_agreement_per_image.numpy().astype(np.float32),
                              "counts_centre": _counts(measured.confusion_centre),
                              "counts_shifted": _counts(measured.confusion_shifted)}
    write_atomic(npz_path, lambda f: np.savez_compressed(f, **arrays), root=out)
    write_json_atomic(json_path, record.to_dict(), root=out)  # written last: its presence marks the run finished
    return record
