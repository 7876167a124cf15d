"""The study's analysis, computed once from the runs' per-image statistics
(``docs/study.md``, "Analysis"; ``docs/definitions.md``, "Intervals", "Factorial effects").

- every cell (model x condition): each metric's mean with a 95% paired bootstrap interval over
  seeds and images, its convergence, its size;
- the matched pairs of the question (:data:`PAIRS`), as differences with intervals and an outcome
  (:data:`shiftlab.stats.OUTCOMES`) against the margin;
- main effects and interactions of the balanced factorial (downsampling x head x condition)
  among the cells present, never means over unlike subsets;
- the capacity sweep (when the config has one): the key models' cells at every width, centred,
  and the matched pairs among them at each width (``docs/study.md``, "Capacity").

All intervals use the same bootstrap replicates (one seed), so every difference is paired.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shiftlab.stats import (
    Comparison,
    Design,
    Effect,
    Interval,
    PairedSample,
    cell_means,
    compare,
    interaction,
    main_effect,
)
from shiftlab.study.config import StudyConfig, param_matched_width
from shiftlab.study.measurements import DISTANCE_BANDS
from shiftlab.study.records import RunRecord

__all__ = ["CAPACITY_METRICS", "CONDITION_PAIRS", "MATCHED_PAIRS", "PAIRS", "Analysis", "CellStats", "Pair", "analyse",
           "capacity_key", "cell_key"]

#: Conditions measured on the same images (so their cells can be compared as pairs).
IMAGE_GROUPS = (("centred", "augmented", "circular"), ("transfer", "transfer_control"), ("probe", "probe_circular"))
#: Metrics the matched pairs and the factorial effects are computed for.
PAIR_METRICS = ("consistency", "consistency_correct", "agreement", "accuracy", "test_accuracy", "flip_rate",
                "agreement_beyond", "aligned", "unaligned", "worst_case", "aliasing_gap_matched",
                *(f"agreement_{band.name}" for band in DISTANCE_BANDS))
EFFECT_METRICS = ("consistency", "test_accuracy")
#: Seed of the bootstrap replicates (one for the whole analysis: every interval is paired).
BOOT_SEED = 0


@dataclass(frozen=True)
class Pair:
    """A paired contrast: ``a`` against ``b``. In :data:`PAIRS` they are two models in the same
    condition; in :data:`CONDITION_PAIRS` two conditions of the same model (measured on the same
    images, so the difference is paired either way)."""

    id: str
    a: str
    b: str
    question: str


#: The matched pairs the verdict answers (``docs/study.md``, "Verdict").
PAIRS = (
    Pair("fcn_vs_classic", "strided_gap", "maxpool_fc", "the FCN against the classic max-pool CNN (FC head)"),
    Pair("fcn_vs_maxpool_gap", "strided_gap", "maxpool_gap", "the FCN against a max-pool network with the same global-pool head"),
    Pair("fcn_twin", "blurstrided_gap", "strided_gap", "the anti-aliased FCN against the FCN"),
    Pair("classic_twin", "maxblur_fc", "maxpool_fc", "the anti-aliased classic CNN against the classic CNN"),
    Pair("maxpool_gap_twin", "maxblur_gap", "maxpool_gap", "the anti-aliased max-pool GAP network against its plain twin"),
    Pair("aa_fcn_vs_classic", "blurstrided_gap", "maxpool_fc", "the anti-aliased FCN against the classic CNN"),
    Pair("fcn_head", "strided_gap", "strided_fc", "a global-pool head against an FC head on the strided trunk"),
    Pair("maxpool_head", "maxpool_gap", "maxpool_fc", "a global-pool head against an FC head on the max-pool trunk"),
    Pair("aps_vs_fcn", "aps_gap", "strided_gap", "adaptive polyphase sampling against the FCN"),
    # the FCN that performs as well in the literature (Springenberg et al.'s All-CNN)
    Pair("allcnn_vs_classic", "allconv_gap", "maxpool_fc", "the All-CNN FCN against the classic max-pool CNN (FC head)"),
    Pair("allcnn_vs_maxpool_gap", "allconv_gap", "maxpool_gap",
         "the All-CNN FCN against a max-pool network with the same global-pool head"),
    Pair("allcnn_vs_fcn", "allconv_gap", "strided_gap", "the All-CNN FCN against the Strided-CNN FCN"),
    Pair("aa_fcn_vs_allcnn", "blurstrided_gap", "allconv_gap", "the anti-aliased FCN against the All-CNN FCN"),
    Pair("allconv_head", "allconv_gap", "allconv_fc", "a global-pool head against an FC head on the All-CNN trunk"),
    # support-matched controls: aliasing or receptive field (docs/study.md, "Controls")
    Pair("max_vs_avg", "maxpool_gap", "avgpool_gap", "a 2x2 max against a 2x2 mean before decimation (same support)"),
    Pair("blur_vs_learned", "blurstrided_gap", "learned_gap",
         "a fixed binomial 4x4 low-pass against a learned 4x4 filter from random initialisation (same support)"),
    Pair("blur_vs_learnedblur", "blurstrided_gap", "learnedblur_gap",
         "a fixed binomial 4x4 low-pass against a learned 4x4 filter initialised at it (same support)"),
)

#: Parameter-matched contrasts: the All-CNN pairs of :data:`PAIRS`, ``a`` at its matched width
#: (``StudyConfig.param_matched``) against ``b`` at the study's width; labelled ``"<id>|matched"``.
MATCHED_PAIRS = tuple(p for p in PAIRS if p.id in ("allcnn_vs_classic", "allcnn_vs_maxpool_gap", "allcnn_vs_fcn"))

#: The within-model condition contrasts (``Comparison.label`` is ``"<id>|<model>"``).
CONDITION_PAIRS = (
    Pair("augmentation", "augmented", "centred", "training on translated objects against centred ones"),
    Pair("padding", "circular", "centred", "circular padding against zero padding"),
    Pair("transfer", "transfer", "transfer_control",
         "a trunk trained on other classes at random positions against one trained centred (new classes)"),
    Pair("probe_padding", "probe", "probe_circular", "position probe: zero padding against circular padding"),
)
CONDITION_METRICS = ("consistency", "consistency_correct", "accuracy", "test_accuracy", "agreement_beyond",
                     "probe_accuracy")
#: Metrics of the capacity sweep's pairs.
CAPACITY_METRICS = ("consistency", "consistency_correct", "test_accuracy")


def cell_key(model: str, condition: str) -> str:
    """The key of a cell: ``"model|condition"``."""
    return f"{model}|{condition}"


def capacity_key(model: str, width: int) -> str:
    """The key of a capacity-sweep cell (centred): ``"model|centred|wWIDTH"``."""
    return f"{model}|centred|w{width}"


@dataclass
class CellStats:
    """One model under one condition, over its seeds.

    ``metrics``: metric -> mean over seeds and images with its 95% interval. ``converged``: how
    many of the ``n_seeds`` runs reached the target training accuracy (None: no target).
    ``width``: the models' width (None in results written before the capacity sweep existed).
    """

    model: str
    downsampling: str
    head: str
    padding: str
    condition: str
    n_seeds: int
    n_images: int
    params: int
    macs: int
    receptive_field: int
    converged: int | None
    final_train_accuracy: float
    epochs: float
    metrics: dict[str, Interval]
    width: int | None = None

    @property
    def key(self) -> str:
        return cell_key(self.model, self.condition)

    @property
    def all_converged(self) -> bool | None:
        return None if self.converged is None else self.converged == self.n_seeds

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "metrics"}
        d["metrics"] = {k: v.to_dict() for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CellStats:
        d = dict(d)
        d["metrics"] = {k: Interval(**v) for k, v in d["metrics"].items()}
        return cls(**d)


@dataclass
class Analysis:
    """Everything the verdict and the report use, with intervals.

    ``comparisons``: the matched pairs present (:data:`PAIRS`; ``Comparison.label`` is
    ``"<pair id>|<condition>"``, ``a`` and ``b`` are cell keys; the within-model contrasts of
    :data:`CONDITION_PAIRS` are labelled ``"<id>|<model>"``); ``effects``: main effects and two-way
    interactions of the balanced factorial; ``capacity``: the sweep's cells at every width
    (:func:`capacity_key`), ``capacity_comparisons`` its matched pairs, labelled
    ``"<pair id>|w<width>"``; ``matched``: the parameter-matched runs' cells (centred, at their
    matched width), ``matched_comparisons`` their contrasts (:data:`MATCHED_PAIRS`, labelled
    ``"<pair id>|matched"``). ``cells``, ``comparisons`` and ``effects`` are at the main width only.
    """

    margin: float
    level: float
    n_boot: int
    cells: list[CellStats]
    comparisons: list[Comparison] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    capacity: list[CellStats] = field(default_factory=list)
    capacity_comparisons: list[Comparison] = field(default_factory=list)
    matched: list[CellStats] = field(default_factory=list)
    matched_comparisons: list[Comparison] = field(default_factory=list)

    def matched_cell(self, model: str) -> CellStats | None:
        """The parameter-matched runs' cell of ``model`` (centred, at its matched width)."""
        return next((c for c in self.matched if c.model == model), None)

    def matched_comparison(self, pair_id: str, metric: str) -> Comparison | None:
        """The parameter-matched contrast ``pair_id`` (:data:`MATCHED_PAIRS`) on ``metric``."""
        return next((c for c in self.matched_comparisons if c.label == f"{pair_id}|matched" and c.metric == metric),
                    None)

    @property
    def widths(self) -> list[int]:
        """The capacity sweep's widths, ascending (empty without a sweep)."""
        return sorted({c.width for c in self.capacity if c.width is not None})

    def capacity_cell(self, model: str, width: int) -> CellStats | None:
        return next((c for c in self.capacity if c.model == model and c.width == width), None)

    def capacity_comparison(self, pair_id: str, width: int, metric: str) -> Comparison | None:
        """The matched pair ``pair_id`` at ``width`` on ``metric`` (centred)."""
        return next((c for c in self.capacity_comparisons if c.label == f"{pair_id}|w{width}" and c.metric == metric),
                    None)

    def cell(self, model: str, condition: str) -> CellStats | None:
        for c in self.cells:
            if c.model == model and c.condition == condition:
                return c
        return None

    def comparison(self, pair_id: str, condition: str, metric: str) -> Comparison | None:
        for c in self.comparisons:
            if c.label == f"{pair_id}|{condition}" and c.metric == metric:
                return c
        return None

    def condition_comparison(self, pair_id: str, model: str, metric: str) -> Comparison | None:
        """The paired contrast ``pair_id`` (:data:`CONDITION_PAIRS`) of ``model`` on ``metric``."""
        return self.comparison(pair_id, model, metric)

    def to_dict(self) -> dict:
        return {"margin": self.margin, "level": self.level, "n_boot": self.n_boot,
                "cells": [c.to_dict() for c in self.cells],
                "comparisons": [c.to_dict() for c in self.comparisons],
                "effects": [e.to_dict() for e in self.effects],
                "capacity": [c.to_dict() for c in self.capacity],
                "capacity_comparisons": [c.to_dict() for c in self.capacity_comparisons],
                "matched": [c.to_dict() for c in self.matched],
                "matched_comparisons": [c.to_dict() for c in self.matched_comparisons]}

    @classmethod
    def from_dict(cls, d: dict) -> Analysis:
        def comparisons(items: list[dict]) -> list[Comparison]:
            # the outcome is decided again from the interval and the margin (a file written under an
            # older rule, e.g. with "inconclusive" for an interval that excludes 0, reads with today's)
            return [Comparison(c["label"], c["a"], c["b"], c["metric"], Interval(**c["interval"]), c["margin"])
                    for c in items]

        effects = [Effect(e["kind"], tuple(e["factors"]), tuple(tuple(p) for p in e["levels"]), e["metric"],
                          Interval(**e["interval"])) for e in d["effects"]]
        return cls(d["margin"], d["level"], d["n_boot"], [CellStats.from_dict(c) for c in d["cells"]],
                   comparisons(d["comparisons"]), effects, [CellStats.from_dict(c) for c in d.get("capacity", [])],
                   comparisons(d.get("capacity_comparisons", [])), [CellStats.from_dict(c) for c in d.get("matched", [])],
                   comparisons(d.get("matched_comparisons", [])))


KeyOf = Callable[[RunRecord], str]


def _main_key(record: RunRecord) -> str:
    return cell_key(record.model, record.condition)


def _capacity_key(record: RunRecord) -> str:
    return capacity_key(record.model, record.width)


def _samples(records: list[RunRecord], per_image: list[dict[str, np.ndarray]], seeds: int,
             conditions: tuple[str, ...], key_of: KeyOf = _main_key) -> dict[str, PairedSample]:
    """metric -> sample of the cells of ``conditions`` (one image group): ``[seeds, images]`` arrays."""
    rows: dict[str, dict[str, list]] = {}
    for record, arrays in zip(records, per_image, strict=True):
        if record.condition not in conditions:
            continue
        for metric, values in arrays.items():
            rows.setdefault(metric, {}).setdefault(key_of(record), [None] * seeds)[record.seed] = values
    samples = {}
    for metric, cells in rows.items():
        stacked = {k: np.stack(v) for k, v in cells.items() if all(x is not None for x in v)}
        stacked = {k: v for k, v in stacked.items() if not np.isnan(v).all()}
        if stacked:
            samples[metric] = PairedSample(stacked)
    return samples


def _cells(records: list[RunRecord], samples: dict[str, dict[str, PairedSample]], config: StudyConfig,
           key_of: KeyOf = _main_key) -> list[CellStats]:
    by_cell: dict[str, list[RunRecord]] = {}
    for r in records:
        by_cell.setdefault(key_of(r), []).append(r)
    intervals: dict[str, dict[str, Interval]] = {}
    for group in samples.values():
        for metric, sample in group.items():
            for key, interval in cell_means(sample, n_boot=config.n_boot, seed=BOOT_SEED).items():
                intervals.setdefault(key, {})[metric] = interval
    cells = []
    for key, runs in by_cell.items():
        first = runs[0]
        flags = [r.training.converged for r in runs]
        n_images = next((g[m].n_images for g in samples.values() for m in ("consistency", "probe_accuracy")
                         if m in g and key in g[m].values), 0)
        cells.append(CellStats(
            model=first.model, downsampling=first.downsampling, head=first.head, padding=first.padding,
            condition=first.condition, n_seeds=len(runs), n_images=n_images, params=first.params, macs=first.macs,
            receptive_field=first.receptive_field, converged=None if flags[0] is None else sum(bool(f) for f in flags),
            final_train_accuracy=float(np.mean([r.training.final_train_accuracy for r in runs])),
            epochs=float(np.mean([r.training.epochs for r in runs])), metrics=intervals.get(key, {}), width=first.width))
    return cells


def _comparisons(samples: dict[str, dict[str, PairedSample]], config: StudyConfig) -> list[Comparison]:
    """Every matched pair in every condition, then every condition pair of every model, on the
    metrics present for both cells."""
    wanted = [(f"{pair.id}|{condition}", condition, cell_key(pair.a, condition), cell_key(pair.b, condition),
               PAIR_METRICS) for condition in config.conditions for pair in PAIRS]
    wanted += [(f"{pair.id}|{model}", pair.a, cell_key(model, pair.a), cell_key(model, pair.b), CONDITION_METRICS)
               for pair in CONDITION_PAIRS for model in config.models]
    out = []
    for label, condition, a, b, metrics in wanted:
        group = next(g for g in IMAGE_GROUPS if condition in g)
        for metric in metrics:
            sample = samples.get(group[0], {}).get(metric)
            if sample is not None and a in sample.values and b in sample.values:
                out.append(compare(sample, a, b, metric=metric, margin=config.margin, label=label,
                                   n_boot=config.n_boot, seed=BOOT_SEED))
    return out


def _design(cells: list[CellStats], conditions: tuple[str, ...]) -> Design | None:
    """A balanced downsampling x head x condition design among ``cells``: the heads run with
    every downsampling, and the downsamplings run with every such head under every condition
    (e.g. ``aps_gap`` without ``aps_fc`` leaves APS out). None when fewer than 2 levels remain."""
    present = {(c.downsampling, c.head, c.condition): c.key for c in cells if c.condition in conditions}
    conds = tuple(c for c in conditions if any(k[2] == c for k in present))
    downs = tuple(dict.fromkeys(k[0] for k in present))
    heads = tuple(dict.fromkeys(k[1] for k in present))
    full_heads = tuple(h for h in heads if sum(all((d, h, c) in present for c in conds) for d in downs) >= 2)
    downs = tuple(d for d in downs if all((d, h, c) in present for h in full_heads for c in conds))
    heads = full_heads
    if len(downs) < 2 and len(heads) < 2 or not downs or not heads:
        return None
    factors = {"downsampling": downs, "head": heads, "condition": conds}
    return Design(factors, lambda levels: present[(levels["downsampling"], levels["head"], levels["condition"])])


def _effects(cells: list[CellStats], samples: dict[str, dict[str, PairedSample]], config: StudyConfig) -> list[Effect]:
    """Main effects (each level against the first) and two-way interactions, per metric."""
    conditions = tuple(c for c in ("centred", "augmented") if c in config.conditions)
    design = _design(cells, conditions)
    if design is None:
        return []
    out = []
    for metric in EFFECT_METRICS:
        sample = samples["centred"].get(metric)
        if sample is None:
            continue
        contrasts = [(f, (lv, levels[0])) for f, levels in design.factors.items() for lv in levels[1:]]
        for factor, pair in contrasts:
            out.append(Effect("main", (factor,), (pair,), metric, main_effect(
                design, sample, factor, pair[0], pair[1], n_boot=config.n_boot, seed=BOOT_SEED)))
        for (f1, p1), (f2, p2) in itertools.combinations(contrasts, 2):
            if f1 != f2:
                out.append(Effect("interaction", (f1, f2), (p1, p2), metric, interaction(
                    design, sample, f1, p1, f2, p2, n_boot=config.n_boot, seed=BOOT_SEED)))
    return out


def _capacity(records: list[RunRecord], per_image: list[dict[str, np.ndarray]],
              config: StudyConfig) -> tuple[list[CellStats], list[Comparison]]:
    """The sweep's cells (the capacity models, centred, at every width) and its matched pairs."""
    if not config.capacity_widths:
        return [], []
    chosen = [i for i, r in enumerate(records) if r.condition == "centred" and r.model in config.capacity_models]
    runs = [records[i] for i in chosen]
    sample = _samples(runs, [per_image[i] for i in chosen], config.seeds, ("centred",), _capacity_key)
    cells = _cells(runs, {"centred": sample}, config, _capacity_key)
    out = []
    for width in sorted({config.width, *config.capacity_widths}):
        for pair in PAIRS:
            a, b = capacity_key(pair.a, width), capacity_key(pair.b, width)
            for metric in CAPACITY_METRICS:
                if metric in sample and a in sample[metric].values and b in sample[metric].values:
                    out.append(compare(sample[metric], a, b, metric=metric, margin=config.margin,
                                       label=f"{pair.id}|w{width}", n_boot=config.n_boot, seed=BOOT_SEED))
    return cells, out


def _matched(records: list[RunRecord], per_image: list[dict[str, np.ndarray]],
             config: StudyConfig) -> tuple[list[CellStats], list[Comparison]]:
    """The parameter-matched runs' cells and their contrasts with the main width's models
    (:data:`MATCHED_PAIRS`): every run centred, on the same images, so the pairs are paired."""
    widths = {m: param_matched_width(m, config.width) for m in config.param_matched}
    references = {pair.b for pair in MATCHED_PAIRS}
    chosen = [i for i, r in enumerate(records) if r.condition == "centred" and (
        widths.get(r.model) == r.width != config.width or (r.model in references and r.width == config.width))]
    if not any(records[i].model in widths for i in chosen):
        return [], []
    runs = [records[i] for i in chosen]
    sample = _samples(runs, [per_image[i] for i in chosen], config.seeds, ("centred",), _capacity_key)
    cells = [c for c in _cells(runs, {"centred": sample}, config, _capacity_key) if c.model in widths]
    out = []
    for pair in MATCHED_PAIRS:
        if pair.a not in widths:
            continue
        a, b = capacity_key(pair.a, widths[pair.a]), capacity_key(pair.b, config.width)
        for metric in PAIR_METRICS:
            if metric in sample and a in sample[metric].values and b in sample[metric].values:
                out.append(compare(sample[metric], a, b, metric=metric, margin=config.margin,
                                   label=f"{pair.id}|matched", n_boot=config.n_boot, seed=BOOT_SEED))
    return cells, out


def analyse(config: StudyConfig, records: list[RunRecord], per_image: list[dict[str, np.ndarray]]) -> Analysis:
    """The analysis of a study's runs.

    Args:
        config: the study's config (seeds, margin, bootstrap size, capacity sweep).
        records: every run; ``per_image[i]`` the per-image arrays of ``records[i]``
            (metric -> ``(n_images,)``).
    """
    main = [i for i, r in enumerate(records) if r.width == config.width]
    main_records, main_arrays = [records[i] for i in main], [per_image[i] for i in main]
    samples = {group[0]: _samples(main_records, main_arrays, config.seeds, group) for group in IMAGE_GROUPS}
    cells = _cells(main_records, samples, config)
    capacity, capacity_comparisons = _capacity(records, per_image, config)
    matched, matched_comparisons = _matched(records, per_image, config)
    return Analysis(config.margin, 0.95, config.n_boot, cells, _comparisons(samples, config),
                    _effects(cells, samples, config), capacity, capacity_comparisons, matched, matched_comparisons)
