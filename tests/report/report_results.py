"""Synthetic study results for the report tests, built through the real analysis.

:func:`make_results` takes, per cell (model x condition), the means the verdict reads
(consistency, test accuracy, agreement at multiples of S and elsewhere, training accuracy and
convergence, probe accuracy) and draws per-image values around them, then runs
:func:`shiftlab.study.analysis.analyse` (paired bootstrap, matched pairs, factorial effects), so
every interval and outcome is computed as in a real study. No training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiftlab.study.analysis import analyse
from shiftlab.study.config import StudyConfig
from shiftlab.study.measurements import DISTANCE_BANDS
from shiftlab.study.records import SCHEMA_VERSION, Periodicity, RunRecord, ShiftProfile, TrainingRecord
from shiftlab.study.results import StudyMeta, StudyResults
from shiftlab.zoo import spec

STRIDE = 8
PROFILE_SHIFTS = [[0, 0], [0, 1], [0, 8], [8, 8], [2, 3]]
CANVAS_SHIFTS = [[dy, dx] for dy in range(-2, 3) for dx in range(-2, 3)] + [[0, -8], [0, 8], [8, 0], [-8, 0]]


@dataclass
class Cell:
    """What a synthetic cell measures (means over seeds and images)."""

    consistency: float = 0.5
    test_accuracy: float = 0.95
    aligned: float = 0.95
    unaligned: float = 0.5
    train_accuracy: float = 0.99
    converged: bool = True
    probe_accuracy: float = 0.5


def _layer(name, kind, shape, stride, aligned, unaligned, interior, unaligned_interior, by_shift):
    return {"name": name, "kind": kind, "shape": list(shape), "stride": [stride, stride], "border": 1,
            "aligned_error": aligned, "aligned_error_max": aligned, "unaligned_error": unaligned,
            "unaligned_error_max": unaligned, "aligned_interior_error": interior,
            "unaligned_interior_error": unaligned_interior, "error_by_shift": by_shift,
            "interior_error_by_shift": [None] * len(by_shift), "diagnosis": "boundary+aliasing"}


def _equivariance(model: str, circular: bool) -> dict:
    """A per-layer profile shaped like the zoo's: exact at aligned shifts in the interior (and on
    the whole map with circular padding), aliasing at the others."""
    down, head = spec(model).downsampling, spec(model).head
    border = 0.0 if circular else 0.02
    aliased = [0.0, 0.3, 0.0, 0.0, 0.3]
    layers = []
    if down != "strided":
        layers.append(_layer("features.0", "Conv2d", (4, 48, 48), 1, border, None, 0.0, None, [border] * 5))
    layers.append(_layer("features.1", "Conv2d" if down == "strided" else "MaxPool2d", (4, 24, 24), 2, border,
                         0.3, 0.0, 0.25, aliased))
    layers.append(_layer("features.2", "Conv2d", (16, 6, 6), 8, border, 0.5, 0.0, 0.45, [0.0, 0.5, 0.0, 0.0, 0.5]))
    if head != "fc":
        pool = "AdaptiveAvgPool2d" if head == "gap" else "AdaptiveMaxPool2d"
        layers.append(_layer("head.1", pool, (10, 1, 1), 48, None, 0.4, None, None, [0.0, 0.4, 1e-7, 1e-7, 0.4]))
    return {"mode": "circular", "shift_set": "list", "shifts": PROFILE_SHIFTS, "input_shape": [1, 48, 48],
            "n_images": 4, "output_eq_t_db": None, "layers": layers, "skipped": []}


def _around(rng: np.random.Generator, mean: float, n: int, sd: float = 0.05) -> np.ndarray:
    """``n`` values in [0, 1] whose mean is ``mean`` (to float precision where no clipping binds)."""
    noise = rng.normal(0.0, sd, n)
    return np.clip(mean + noise - noise.mean(), 0.0, 1.0)


def _bernoulli(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    k = int(round(p * n))
    return rng.permutation(np.r_[np.ones(k), np.zeros(n - k)])


def make_results(cells: dict[tuple[str, str], Cell], *, seeds: int = 3, n_images: int = 200, n_boot: int = 200,
                 margin: float = 0.02, target: float = 0.98,
                 capacity: dict[tuple[str, int], Cell] | None = None, matched: bool = True) -> StudyResults:
    """Study results of ``cells`` ((model, condition) -> :class:`Cell`, width 8), analysed for real;
    ``capacity``: the capacity sweep's cells at other widths ((model, width) -> :class:`Cell`, centred);
    ``matched=False``: without the distance-matched signature (as the second design's results)."""
    models = tuple(dict.fromkeys(m for m, _ in cells))
    conditions = tuple(dict.fromkeys(c for _, c in cells))
    capacity = capacity or {}
    config = StudyConfig(models=models, conditions=conditions, seeds=seeds, n_boot=n_boot, margin=margin,
                         target_accuracy=target, n_eval=n_images, max_epochs=3, width=8,
                         capacity_widths=tuple(sorted({w for _, w in capacity})),
                         capacity_models=tuple(dict.fromkeys(m for m, _ in capacity)))
    rng = np.random.default_rng(0)
    records, per_image = [], []
    runs = [(m, cond, 8, c) for (m, cond), c in cells.items()] + [(m, "centred", w, c) for (m, w), c in capacity.items()]
    for model, cond, width, c in runs:
        s = spec(model)
        for seed in range(seeds):
            probe = cond.startswith("probe")
            if probe:
                arrays = {"probe_accuracy": _bernoulli(rng, c.probe_accuracy, n_images),
                          "test_accuracy": _bernoulli(rng, c.probe_accuracy, n_images)}
            else:
                cons = _around(rng, c.consistency, n_images)
                correct = _bernoulli(rng, c.test_accuracy, n_images)
                arrays = {"consistency": cons, "consistency_correct": np.where(correct > 0, cons, np.nan),
                          "agreement": _around(rng, (c.aligned + c.unaligned) / 2, n_images),
                          "accuracy": _around(rng, c.test_accuracy - 0.1, n_images),
                          "correct_centre": correct, "worst_case": _bernoulli(rng, 0.3, n_images),
                          "aligned": _around(rng, c.aligned, n_images), "unaligned": _around(rng, c.unaligned, n_images),
                          "flip_rate": _around(rng, 0.2, n_images), "test_accuracy": correct}
                arrays["aliasing_gap"] = arrays["aligned"] - arrays["unaligned"]
                if matched:  # the distance-matched signature: here the same contrast, at distance S; the bands
                    arrays["aligned_at_stride"], arrays["unaligned_at_stride"] = arrays["aligned"], arrays["unaligned"]
                    arrays["aliasing_gap_matched"] = arrays["aliasing_gap"]
                    for band in DISTANCE_BANDS:
                        arrays[f"agreement_{band.name}"] = _around(rng, (c.aligned + c.unaligned) / 2, n_images)
                        arrays[f"accuracy_{band.name}"] = _around(rng, c.test_accuracy - 0.01 * band.low, n_images)
            history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": c.train_accuracy * e / 3, "seconds": 1.0}
                       for e in (1, 2, 3)]
            training = TrainingRecord(epochs=3, converged=None if probe else c.converged,
                                      target_accuracy=None if probe else target,
                                      final_train_accuracy=c.train_accuracy, final_train_loss=0.3, seconds=3.0,
                                      history=history)
            summary = {k: float(np.nanmean(v)) for k, v in arrays.items()}
            acc = [max(0.0, c.test_accuracy - 0.02 * max(abs(dy), abs(dx))) for dy, dx in CANVAS_SHIFTS]
            records.append(RunRecord(
                key=f"{model}__{cond}{'' if width == 8 else f'__w{width}'}__seed{seed}", model=model,
                downsampling=s.downsampling, head=s.head,
                padding="circular" if cond in ("circular", "probe_circular") else "zeros", condition=cond, seed=seed,
                width=width, params=(6330 if s.downsampling == "strided" else 17530) * width // 8, macs=10**6, receptive_field=22,
                total_stride=STRIDE, training=training, summary=summary,
                profile=None if probe else ShiftProfile(CANVAS_SHIFTS, acc, [c.unaligned] * len(CANVAS_SHIFTS)),
                periodicity=None if probe else Periodicity(
                    STRIDE, [[c.aligned if (ry, rx) == (0, 0) else c.unaligned for rx in range(STRIDE)]
                             for ry in range(STRIDE)], [-8, -2, -1, 0, 1, 2, 8],
                    [c.aligned, c.unaligned, c.unaligned, 1.0, c.unaligned, c.unaligned, c.aligned]),
                equivariance=None if probe else _equivariance(model, cond == "circular"), seconds=3.0))
            per_image.append(arrays)
    meta = StudyMeta(dataset="mnist-5k", n_train=1000, n_test=n_images, n_eval=n_images, object_size=[28, 28],
                     object_extent=[20, 20], canvas_size=[48, 48], max_shift=10, classes=[str(i) for i in range(10)],
                     device="cpu", workers=1, threads_per_worker=1, hardware="test", torch_version="2",
                     shiftlab_version="0.1.0", started="2026-01-01T00:00:00+00:00", seconds=12.0)
    return StudyResults(SCHEMA_VERSION, config.to_dict(), meta, records, analyse(config, records, per_image))


def full_cells() -> dict[tuple[str, str], Cell]:
    """A full synthetic study: strided, max-pool and blurred-strided trunks x FC and GAP heads,
    every condition; the numbers of the review (FCN 0.30, classic CNN 0.21, max-pool GAP 0.90)."""
    base = {"strided_fc": Cell(0.18, 0.95, 0.1, 0.3), "strided_gap": Cell(0.30, 0.95, 0.99, 0.1),
            "maxpool_fc": Cell(0.21, 0.97, 0.15, 0.5), "maxpool_gap": Cell(0.90, 0.97, 0.99, 0.85),
            "blurstrided_fc": Cell(0.5, 0.96, 0.3, 0.6), "blurstrided_gap": Cell(0.97, 0.96, 0.98, 0.97)}
    cells = {}
    for cond in ("centred", "augmented", "circular", "transfer", "transfer_control", "probe", "probe_circular"):
        for m, c in base.items():
            gap = m.endswith("_gap")
            cells[(m, cond)] = Cell(
                consistency=min(1.0, c.consistency + (0.1 if cond in ("augmented", "transfer") else 0.0)),
                test_accuracy=0.6 if cond.startswith("transfer") else c.test_accuracy, aligned=c.aligned,
                unaligned=c.unaligned,
                probe_accuracy=(0.5 if cond == "probe_circular" else 0.9) if gap else 1.0)
    return cells
