"""The segmentation study's statistics (``docs/segmentation.md``, "The study"): per cell (U-Net x
condition) the means of the per-image agreement metrics and the mIoU, each with a paired two-way
bootstrap interval over seeds and test scenes; the matched comparisons that isolate the encoder's
downsampling, the decoder's upsampling and the padding; their decisions against the margin
(:func:`shiftlab.stats.decide`).

Per-image metrics (each a mean of the image's ASSC over a set of shifts, :mod:`.shift_set`):
``massc`` (every non-zero shift), ``near``, ``aligned`` and ``unaligned`` (the ring at the total
stride), ``gap`` (aligned - unaligned: the distance-matched aliasing signature); and the same
over the pixels either map labels an object (``object_massc``, ...), where a scene's background,
about 90% of its pixels and nearly always agreed on, does not dilute the disagreement. mIoU is a ratio
of sums, not a mean over images: its replicates sum each class's true positives, false positives
and false negatives over the drawn seeds and images (:func:`miou_replicates`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from shiftlab.stats import Comparison, Interval, PairedSample, decide
from shiftlab.stats.bootstrap import bootstrap_indices, cell_means, difference, percentile_interval, replicate_sums

from .config import SegStudyConfig
from .job import SegRunRecord
from .shift_set import SHIFT_KINDS, shift_kind

__all__ = ["AGREEMENT_METRICS", "PAIRS", "SegCell", "SegResults", "analyse_seg", "cell_key", "miou_of_counts",
           "miou_replicates"]

_KINDS = ("massc", *SHIFT_KINDS, "gap")
#: Per-image agreement metrics of a cell (module notes), over all valid pixels and (``object_``)
#: over the pixels either map labels an object.
AGREEMENT_METRICS = (*_KINDS, *(f"object_{k}" for k in _KINDS))
#: The matched U-Net pairs ``(a, b, what the difference isolates)``, compared in every condition.
PAIRS = (
    ("unet_aps_transposed", "unet_maxpool_transposed", "encoder: APS-D instead of max-pool (transposed up)"),
    ("unet_blur_transposed", "unet_maxpool_transposed", "encoder: blurred max-pool instead of max-pool (transposed up)"),
    ("unet_strided_transposed", "unet_maxpool_transposed", "encoder: strided conv instead of max-pool (transposed up)"),
    ("unet_aps_aps", "unet_aps_transposed", "decoder: APS-U instead of transposed conv (APS-D down)"),
    ("unet_maxpool_bilinear", "unet_maxpool_transposed", "decoder: bilinear instead of transposed conv (max-pool down)"),
    ("unet_aps_aps", "unet_maxpool_transposed", "both: APS-D + APS-U instead of the U-Net's max-pool + transposed"),
)
#: The U-Net of the literature (Ronneberger et al.): the baseline of the verdict.
BASELINE = "unet_maxpool_transposed"


def cell_key(model: str, condition: str) -> str:
    return f"{model}|{condition}"


def miou_of_counts(counts: np.ndarray) -> float:
    """mIoU from ``[K, 3]`` summed (TP, FP, FN): the mean over classes with a non-zero union; NaN if none.

    Example:
        >>> miou_of_counts(np.array([[3, 0, 1], [2, 1, 0]]))  # IoU 3/4 and 2/3
        0.7083333333333333
    """
    union = counts.sum(axis=-1).astype(np.float64)
    present = union > 0
    return float((counts[..., 0][present] / union[present]).mean()) if present.any() else float("nan")


def miou_replicates(counts: np.ndarray, seed_idx: np.ndarray, image_idx: np.ndarray) -> np.ndarray:
    """mIoU of each bootstrap replicate: the counts summed with each replicate's draw weights.

    Shape:
        - counts: :math:`(S, N, K, 3)` per seed, image and class (TP, FP, FN)
        - seed_idx: :math:`(B, S)`; image_idx: :math:`(B, N)`; output: :math:`(B,)`
    """
    s, n, k, _ = counts.shape
    sums = replicate_sums(counts.reshape(s, n, k * 3).transpose(2, 0, 1).astype(np.float64), seed_idx, image_idx)
    tp, union = sums.reshape(k, 3, -1)[:, 0], sums.reshape(k, 3, -1).sum(axis=1)
    present = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, tp / np.where(present, union, 1.0), 0.0)
    return iou.sum(axis=0) / np.maximum(present.sum(axis=0), 1)


@dataclass(frozen=True)
class SegCell:
    """One U-Net under one condition, over its seeds.

    Attributes:
        model, condition: the cell.
        params, macs, receptive_field: of the model (:func:`shiftlab.zoo.info`).
        agreement: :data:`AGREEMENT_METRICS` -> interval of the mean over seeds and test scenes.
        miou, miou_shifted: intervals of the test mIoU, unshifted and over the non-zero shifts.
        exact: every scene agreed at every pixel and shift in every seed (ASSC 1 everywhere).
        eq_t_db: per shift kind, the median over seeds of the mean EQ-T (dB) of its shifts
            (None: infinite, the logits matched exactly).
        train_loss: the last epoch's training loss, mean over seeds.
        train_acc: the last epoch's training pixel accuracy, mean over seeds.
        trained: seeds whose last epoch reached the config's ``target_accuracy``.
    """

    model: str
    condition: str
    params: int
    macs: int
    receptive_field: int
    agreement: dict[str, Interval]
    miou: Interval
    miou_shifted: Interval
    exact: bool
    eq_t_db: dict[str, float | None]
    train_loss: float
    train_acc: float
    trained: int

    @property
    def key(self) -> str:
        return cell_key(self.model, self.condition)

    def to_dict(self) -> dict:
        return {"model": self.model, "condition": self.condition, "params": self.params, "macs": self.macs,
                "receptive_field": self.receptive_field,
                "agreement": {k: v.to_dict() for k, v in self.agreement.items()}, "miou": self.miou.to_dict(),
                "miou_shifted": self.miou_shifted.to_dict(), "exact": self.exact, "eq_t_db": dict(self.eq_t_db),
                "train_loss": self.train_loss, "train_acc": self.train_acc, "trained": self.trained}

    @classmethod
    def from_dict(cls, d: dict) -> SegCell:
        return cls(d["model"], d["condition"], d["params"], d["macs"], d["receptive_field"],
                   {k: Interval(**v) for k, v in d["agreement"].items()}, Interval(**d["miou"]),
                   Interval(**d["miou_shifted"]), bool(d["exact"]), dict(d["eq_t_db"]), d["train_loss"], d["train_acc"],
                   int(d["trained"]))


@dataclass(frozen=True)
class SegResults:
    """Config, runs, cells and comparisons of a segmentation study (``results.json``)."""

    config: SegStudyConfig
    runs: list[SegRunRecord]
    cells: list[SegCell]
    comparisons: list[tuple[str, Comparison]] = field(default_factory=list)  # (condition, comparison)
    classes: list[str] = field(default_factory=list)

    def cell(self, model: str, condition: str) -> SegCell | None:
        return next((c for c in self.cells if c.model == model and c.condition == condition), None)

    def comparison(self, a: str, b: str, condition: str, metric: str) -> Comparison | None:
        return next((c for cond, c in self.comparisons
                     if cond == condition and c.a == a and c.b == b and c.metric == metric), None)

    def to_dict(self) -> dict:
        return {"task": "segmentation", "config": self.config.to_dict(), "classes": list(self.classes),
                "cells": [c.to_dict() for c in self.cells],
                "comparisons": [{"condition": cond, **c.to_dict()} for cond, c in self.comparisons],
                "runs": [r.to_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, d: object, *, source: str = "results") -> SegResults:
        """Inverse of :meth:`to_dict` (decisions decided again from their intervals); ``ValueError``
        naming ``source`` when the file is not a segmentation study's results."""
        try:
            if not isinstance(d, dict) or d.get("task") != "segmentation":
                raise ValueError("no \"task\": \"segmentation\"")
            comparisons = [(c["condition"], Comparison(c["label"], c["a"], c["b"], c["metric"], Interval(**c["interval"]),
                                                       c["margin"])) for c in d["comparisons"]]
            return cls(SegStudyConfig.from_dict(d["config"]),
                       [SegRunRecord.from_dict(r, source=source) for r in d["runs"]],
                       [SegCell.from_dict(c) for c in d["cells"]], comparisons, list(d["classes"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{source} is not the results of a segmentation study ({err})") from err


def _image_metrics(record: SegRunRecord, arrays: dict[str, np.ndarray], stride: int) -> dict[str, np.ndarray]:
    """``(N,)`` per-image values of :data:`AGREEMENT_METRICS` from the run's ``[N, S]`` agreements
    (NaN where an image has no defined value over the shifts of a metric)."""
    kinds = np.array([shift_kind(d, stride) for d in record.shifts])
    out = {}
    for prefix, name in (("", "agreement"), ("object_", "object_agreement")):
        values = arrays[name].astype(np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an image without objects: NaN
            out[f"{prefix}massc"] = np.nanmean(values[:, kinds != "centre"], axis=1)
            for kind in SHIFT_KINDS:
                out[f"{prefix}{kind}"] = np.nanmean(values[:, kinds == kind], axis=1)
        out[f"{prefix}gap"] = out[f"{prefix}aligned"] - out[f"{prefix}unaligned"]
    return out


def _kind_eq_t(record: SegRunRecord, stride: int) -> dict[str, float]:
    by_kind: dict[str, list[float]] = {}
    for d, v in zip(record.shifts, record.eq_t_db_by_shift, strict=True):
        by_kind.setdefault(shift_kind(d, stride), []).append(np.inf if v is None else v)
    return {kind: float(np.mean(by_kind[kind])) for kind in SHIFT_KINDS}


def _ratio_interval(counts: np.ndarray, config: SegStudyConfig, other: np.ndarray | None = None) -> Interval:
    """Interval of the mIoU of ``counts`` ``[S, N, K, 3]`` (minus that of ``other``: paired)."""
    s, n = counts.shape[:2]
    ident = (np.arange(s)[None], np.arange(n)[None])
    draws = bootstrap_indices(s, n, config.n_boot, seed=0)

    def stat(idx: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        value = miou_replicates(counts, *idx)
        return value if other is None else value - miou_replicates(other, *idx)

    return percentile_interval(float(stat(ident)[0]), stat(draws))


def analyse_seg(config: SegStudyConfig, records: list[SegRunRecord], arrays: list[dict[str, np.ndarray]], *,
                classes: list[str] | None = None) -> SegResults:
    """Cells and comparisons of the finished runs of ``config`` (one record and its per-image
    arrays per job, every model x condition x seed)."""
    stride = config.stride
    by_cell: dict[str, list[tuple[SegRunRecord, dict[str, np.ndarray]]]] = {}
    for record, arr in zip(records, arrays, strict=True):
        by_cell.setdefault(cell_key(record.model, record.condition), []).append((record, arr))
    metric_values: dict[str, dict[str, np.ndarray]] = {m: {} for m in AGREEMENT_METRICS}
    counts: dict[str, dict[str, np.ndarray]] = {"centre": {}, "shifted": {}}
    for key, runs in by_cell.items():
        runs.sort(key=lambda run: run[0].seed)
        per_seed = [_image_metrics(r, a, stride) for r, a in runs]
        for m in AGREEMENT_METRICS:
            metric_values[m][key] = np.stack([p[m] for p in per_seed])
        counts["centre"][key] = np.stack([a["counts_centre"] for _, a in runs])
        counts["shifted"][key] = np.stack([a["counts_shifted"] for _, a in runs])
    samples = {m: PairedSample(metric_values[m]) for m in AGREEMENT_METRICS}
    means = {m: cell_means(samples[m], n_boot=config.n_boot) for m in AGREEMENT_METRICS}
    cells = []
    for key, runs in by_cell.items():
        first = runs[0][0]
        eq_t = [_kind_eq_t(r, stride) for r, _ in runs]
        cells.append(SegCell(
            model=first.model, condition=first.condition, params=first.params, macs=first.macs,
            receptive_field=first.receptive_field, agreement={m: means[m][key] for m in AGREEMENT_METRICS},
            miou=_ratio_interval(counts["centre"][key], config), miou_shifted=_ratio_interval(counts["shifted"][key], config),
            exact=all(bool((a["agreement"] == 1).all()) for _, a in runs),
            eq_t_db={k: (None if np.isinf(v := float(np.median([e[k] for e in eq_t]))) else v) for k in SHIFT_KINDS},
            train_loss=float(np.mean([r.history[-1]["train_loss"] for r, _ in runs])),
            train_acc=float(np.mean([r.history[-1]["train_acc"] for r, _ in runs])),
            trained=sum(r.history[-1]["train_acc"] >= config.target_accuracy for r, _ in runs)))
    comparisons = []
    pairs = [(a, b, label) for a, b, label in PAIRS if a in config.models and b in config.models]
    for cond in config.conditions:
        for a, b, label in pairs:
            ka, kb = cell_key(a, cond), cell_key(b, cond)
            for m in ("massc", "object_massc", "object_gap"):
                comparisons.append((cond, Comparison(label, a, b, m, difference(samples[m], ka, kb, n_boot=config.n_boot),
                                                     config.margin)))
            comparisons.append((cond, Comparison(label, a, b, "miou", _ratio_interval(
                counts["centre"][ka], config, counts["centre"][kb]), config.margin)))
    for cond in config.conditions[1:]:
        for model in config.models:
            ka, kb = cell_key(model, cond), cell_key(model, config.conditions[0])
            label = f"{cond} instead of {config.conditions[0]}"
            for m in ("massc", "object_massc"):
                comparisons.append((cond, Comparison(label, ka, kb, m, difference(samples[m], ka, kb, n_boot=config.n_boot),
                                                     config.margin)))
    return SegResults(config, list(records), cells, comparisons, list(classes or []))


def decide_level(interval: Interval, level: float, margin: float) -> str:
    """:func:`shiftlab.stats.decide` of ``interval - level`` (e.g. agreement against 1)."""
    return decide(Interval(interval.estimate - level, interval.low - level, interval.high - level), margin)
