"""Synthetic ``results.json`` dicts that follow :mod:`shiftlab.study.schema` exactly.

The numbers are made up (no training): each model gets a per-layer profile shaped like the zoo's
(one stage of total stride 2 on an 8x8 canvas), a 5x5 grid of canvas shifts (max_shift 2), two
conditions and two seeds. Knobs set the quantities the verdict reads, so a test can flip a claim
by changing one number.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shiftlab.study.schema import SCHEMA_VERSION

MODELS = ("maxpool_fc", "strided_fc", "fcn_gap", "fcn_gmp", "maxpool_gap", "blurpool_gap", "aps_gap")
CONDITIONS = ("centred", "augmented")
SEEDS = (0, 1)
MAX_SHIFT = 2
STRIDE = 2
CANVAS = 8


def _layer(name, kind, shape, stride, aligned, unaligned, aligned_in, unaligned_in, n_shifts):
    """One equivariance layer record, as ``EquivarianceResult.to_dict`` writes it."""
    return {
        "name": name, "kind": kind, "shape": list(shape), "stride": [stride, stride], "border": 1,
        "aligned_error": aligned, "aligned_error_max": None if aligned is None else aligned * 1.5,
        "unaligned_error": unaligned, "unaligned_error_max": None if unaligned is None else unaligned * 1.5,
        "aligned_interior_error": aligned_in, "unaligned_interior_error": unaligned_in,
        "error_by_shift": [0.0] * n_shifts, "interior_error_by_shift": [None] * n_shifts,
        "diagnosis": "boundary",
    }


def _profile(model: str, *, border_error: float, interior_error: float, aliasing: float, n_shifts: int) -> dict:
    circular = model == "aps_gap"
    full = interior_error if circular else border_error
    s1 = dict(aligned=full, unaligned=None, aligned_in=interior_error, unaligned_in=None, n_shifts=n_shifts)
    down = dict(aligned=full, unaligned=aliasing + 0.05, aligned_in=interior_error, unaligned_in=aliasing, n_shifts=n_shifts)
    c, h = 4, CANVAS // STRIDE
    layers = []
    if model.startswith("maxpool"):
        layers += [_layer("features.0", "Conv2d", (c, CANVAS, CANVAS), 1, **s1),
                   _layer("features.1", "ReLU", (c, CANVAS, CANVAS), 1, **s1),
                   _layer("features.2", "MaxPool2d", (c, h, h), STRIDE, **down)]
    elif model.startswith(("strided", "fcn")):
        layers += [_layer("features.0", "Conv2d", (c, h, h), STRIDE, **down),
                   _layer("features.1", "ReLU", (c, h, h), STRIDE, **down)]
    else:
        inner = "BlurPool2d" if model.startswith("blurpool") else "APSPool2d"
        outer = "MaxBlurPool2d" if model.startswith("blurpool") else "MaxAPSPool2d"
        sub = "blur" if model.startswith("blurpool") else "aps"
        trim = dict(s1, aligned=None, unaligned=0.1, aligned_in=None, unaligned_in=0.05)
        layers += [_layer("features.0", "Conv2d", (c, CANVAS, CANVAS), 1, **s1),
                   _layer("features.1", "ReLU", (c, CANVAS, CANVAS), 1, **s1),
                   _layer("features.2.pool", "MaxPool2d", (c, CANVAS - 1, CANVAS - 1), round(CANVAS / (CANVAS - 1), 4), **trim),
                   _layer(f"features.2.{sub}", inner, (c, h, h), STRIDE, **down),
                   _layer("features.2", outer, (c, h, h), STRIDE, **down)]
    skipped = []
    if model.endswith("_fc"):
        skipped = [{"name": "head.0", "kind": "Flatten", "output": "shape (4, 64)"},
                   {"name": "head.1", "kind": "Linear", "output": "shape (4, 10)"}]
    else:
        pool = "AdaptiveMaxPool2d" if model.endswith("_gmp") else "AdaptiveAvgPool2d"
        layers += [_layer("head.0", "Conv2d", (10, h, h), STRIDE, **dict(down, aligned_in=None, unaligned_in=None)),
                   _layer("head.1", pool, (10, 1, 1), CANVAS, None, 0.01, None, None, n_shifts)]
        skipped = [{"name": "head.2", "kind": "Flatten", "output": "shape (4, 10)"}]
    return {"mode": "circular", "shift_set": "grid(m=2)", "shifts": [[dy, dx] for dy in range(-2, 3) for dx in range(-2, 3)],
            "input_shape": [1, CANVAS, CANVAS], "n_images": 4, "output_eq_t_db": None, "layers": layers, "skipped": skipped}


def _invariance(mode: str, consistency: float, flip: float, accuracy: float, n: int = 50) -> dict:
    shifts = [[float(dy), float(dx)] for dy in range(-MAX_SHIFT, MAX_SHIFT + 1) for dx in range(-MAX_SHIFT, MAX_SHIFT + 1)]
    by_shift = [round(accuracy - 0.04 * max(abs(dy), abs(dx)) * (1.0 - consistency) * 4, 6) for dy, dx in shifts]
    by_shift = [min(1.0, max(0.0, a)) for a in by_shift]
    return {
        "mode": mode, "shift_set": f"grid(m={MAX_SHIFT})" if mode == "zeros" else "random(25)", "shifts": shifts,
        "n_images": n, "n_classes": 10, "consistency": consistency, "consistency_sem": 0.004,
        "clean_consistency": min(1.0, consistency + 0.01), "top1_prob_change": round(1 - consistency, 6), "flip_rate": flip,
        "accuracy": accuracy, "mean_accuracy": sum(by_shift) / len(by_shift),
        "worst_case_accuracy": max(0.0, accuracy - 3 * (1 - consistency)), "accuracy_by_shift": by_shift,
    }


def make_results(
    *,
    models: tuple[str, ...] = MODELS,
    conditions: tuple[str, ...] = CONDITIONS,
    seeds: tuple[int, ...] = SEEDS,
    fcn_consistency: float = 0.80,
    maxpool_consistency: float = 0.90,
    fc_head_delta: float = -0.10,
    augmentation_effect: float = 0.08,
    aps_circular: float = 1.0,
    maxpool_flip_rate: float = 0.05,
    fcn_accuracy: float = 0.90,
    maxpool_accuracy: float = 0.905,
    border_error: float = 0.05,
    interior_error: float = 1e-7,
    aliasing: float = 0.3,
    aligned_agreement: float = 1.0,
    unaligned_agreement: float = 0.85,
    max_shift: int = MAX_SHIFT,
    seed_noise: float = 0.004,
) -> dict:
    """A results.json dict. Knobs (centred condition; the augmented one adds ``augmentation_effect``):

    - ``fcn_consistency``: canvas consistency of fcn_gap / fcn_gmp (strided_fc gets it + ``fc_head_delta``);
    - ``maxpool_consistency``: mean canvas consistency of maxpool_fc / maxpool_gap (FC = + delta/2, GAP = - delta/2);
    - ``fc_head_delta``: FC head minus global-pool head consistency, same trunk;
    - ``aps_circular``: circular consistency of aps_gap in every seed (1.0 = exactly invariant);
    - ``aligned_agreement`` / ``unaligned_agreement``: periodicity of the global-pool models.
    """
    base = {
        "fcn_gap": fcn_consistency, "fcn_gmp": fcn_consistency, "strided_fc": fcn_consistency + fc_head_delta,
        "maxpool_fc": maxpool_consistency + fc_head_delta / 2, "maxpool_gap": maxpool_consistency - fc_head_delta / 2,
        "blurpool_gap": 0.95, "aps_gap": 0.97,
    }
    accuracy = {"fcn_gap": fcn_accuracy, "maxpool_fc": maxpool_accuracy}
    n_eq = 25
    runs = []
    for model in models:
        for cond in conditions:
            for seed in seeds:
                noise = seed_noise * (1 if seed % 2 else -1)
                cons = min(1.0, max(0.0, base.get(model, 0.85) + (augmentation_effect if cond == "augmented" else 0) + noise))
                acc = accuracy.get(model, 0.9) + noise / 2
                is_gp = not model.endswith("_fc")
                circ = aps_circular if model == "aps_gap" else min(1.0, cons - (0.1 if model.endswith("_fc") else 0.03))
                flip = maxpool_flip_rate if model.startswith("maxpool") else 0.1
                dx_values = list(range(-max_shift, max_shift + 1))
                al = aligned_agreement if is_gp else 0.8
                un = unaligned_agreement if is_gp else 0.75
                by_dx = [al if dx % STRIDE == 0 else un for dx in dx_values]
                residue = [[al if (ry, rx) == (0, 0) else un for rx in range(STRIDE)] for ry in range(STRIDE)]
                runs.append({
                    "model": model, "condition": cond, "seed": seed, "params": 1000 + 10 * len(model),
                    "total_stride": STRIDE, "train_seconds": 12.0 + seed,
                    "history": [{"epoch": 1, "train_loss": 0.5, "train_acc": 0.8, "seconds": 6.0},
                                {"epoch": 2, "train_loss": 0.3, "train_acc": 0.9, "seconds": 6.0}],
                    "test_accuracy": acc,
                    "canvas": _invariance("zeros", cons, flip, acc),
                    "circular": _invariance("circular", circ, flip, acc),
                    "accuracy_by_distance": [acc - 0.5 * d * (1 - cons) for d in range(max_shift + 1)],
                    "periodicity": {"stride": STRIDE, "residue_agreement": residue, "aligned": al, "unaligned": un,
                                    "dx_values": dx_values, "agreement_by_dx": by_dx},
                    "equivariance": _profile(model, border_error=border_error, interior_error=interior_error,
                                             aliasing=aliasing, n_shifts=n_eq),
                })
    results = {
        "schema_version": SCHEMA_VERSION,
        "config": {"dataset": "digits", "models": list(models), "conditions": list(conditions), "seeds": list(seeds),
                   "epochs": 2, "max_shift": max_shift,
                   # long on purpose: the page must wrap it, not overflow (checked in Chromium)
                   "command": "shiftlab study --dataset digits --epochs 2 --out run --models " + ",".join(models)
                              + " --conditions " + ",".join(conditions) + " --seeds " + ",".join(map(str, seeds))},
        "meta": {"dataset": "digits", "n_train": 1000, "n_test": 400, "n_eval": 50, "object_size": [6, 6],
                 "canvas_size": [CANVAS, CANVAS], "max_shift": max_shift, "classes": [str(i) for i in range(10)],
                 "hardware": "synthetic CPU", "torch_version": "2.x", "shiftlab_version": "0.1.0",
                 "started": "2025-01-01T12:00:00", "seconds": 321.0},
        "runs": runs,
    }
    json.dumps(results, allow_nan=False)  # JSON-safe, as the schema requires
    return results


@pytest.fixture
def synth():
    """The factory :func:`make_results` (call it with knobs)."""
    return make_results


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory holding a default synthetic results.json."""
    d = tmp_path / "run"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(make_results(), indent=1), encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def built_report(tmp_path_factory) -> Path:
    """A report built once per session from the default synthetic results (read-only for tests)."""
    from shiftlab.report import build_report

    d = tmp_path_factory.mktemp("built") / "run"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(make_results(), indent=1), encoding="utf-8")
    return build_report(d)
