"""Configuration of a study run (saved as ``config.json`` in the run directory) and its presets.

The design is described in ``docs/study.md``: a factorial of downsampling x head (the zoo,
:mod:`shiftlab.zoo`), trained under several conditions (:mod:`.conditions`), several seeds each,
measured on the same evaluation images (paired).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from shiftlab.study.conditions import CONDITIONS
from shiftlab.study.measurements import SHIFT_SETS
from shiftlab.training.config import SCHEDULES
from shiftlab.zoo import build as zoo_build
from shiftlab.zoo import count_parameters
from shiftlab.zoo import names as zoo_names
from shiftlab.zoo import spec as zoo_spec

__all__ = ["CAPACITY_MODELS", "DEFAULT_MODELS", "FULL_MODELS", "PRESETS", "StudyConfig", "param_matched_width"]

#: The default run's models: the two FCNs of the question (Springenberg et al.'s Strided-CNN and
#: All-CNN), the classic max-pool CNN and the max-pool network with the FCN's head, and the
#: anti-aliased FCN (the controls are in the full preset).
DEFAULT_MODELS = ("strided_gap", "allconv_gap", "maxpool_fc", "maxpool_gap", "blurstrided_gap")
#: The models of the question's key pairs (the FCN, the classic CNN, the max-pool GAP network, the
#: anti-aliased FCN): the capacity sweep trains them at every width of ``capacity_widths``.
CAPACITY_MODELS = ("strided_gap", "maxpool_fc", "maxpool_gap", "blurstrided_gap")
#: The full run's downsamplings (every kind) and heads (FC against GAP; GMP is in the second design's runs).
FULL_MODELS = tuple(f"{d}_{h}" for d in ("strided", "allconv", "maxpool", "avgpool", "blurstrided", "learned",
                                         "learnedblur", "maxblur", "aps") for h in ("fc", "gap"))


@functools.cache
def param_matched_width(model: str, width: int) -> int:
    """The width at which global-pool zoo ``model`` has the parameter count nearest that of the
    max-pool model with its head at ``width`` (1 input channel, 10 classes; the smaller width on
    a tie): the width of its parameter-matched runs (``StudyConfig.param_matched``).

    Example:
        >>> param_matched_width("allconv_gap", 16), param_matched_width("maxpool_gap", 16)
        (9, 16)
    """
    def params(name: str, w: int) -> int:
        return count_parameters(zoo_build(name, width=w))

    target = params(f"maxpool_{zoo_spec(model).head}", width)
    return min(range(1, 2 * width + 1), key=lambda w: (abs(params(model, w) - target), w))


@dataclass(frozen=True)
class StudyConfig:
    """What to train and measure. Every field is part of the run's identity (``--resume`` checks it).

    Attributes:
        data: dataset name (:func:`shiftlab.data.names`); ``data_root`` where its files are.
        models: zoo models (``<downsampling>_<head>``) to train.
        conditions: training conditions (:data:`shiftlab.study.conditions.CONDITIONS`).
        seeds: seeds (0, 1, ...) per model and condition.
        max_epochs: the training budget in epochs. With ``stop_at_target`` off (the design since
            the third version) every model trains exactly this many; with it on, a model stops
            at the first epoch that reaches ``target_accuracy``.
        target_accuracy: training accuracy a model must reach to count as converged
            (``docs/study.md``, "Training budget"); a model that does not is flagged, never
            compared on performance.
        schedule: learning-rate schedule (:data:`shiftlab.training.config.SCHEDULES`):
            ``cosine`` (from ``lr`` to 0 over the budget) or ``constant``.
        stop_at_target: stop each run at ``target_accuracy`` (the second design) instead of
            training every run for the same budget.
        shift_set: the canvas shift set (:func:`shiftlab.study.measurements.study_shifts`):
            ``matched`` (unaligned shifts at the aligned ones' distance) or ``residues``.
        param_matched: models also trained (centred, every seed) at the width whose parameter
            count is nearest that of the same-head max-pool model at ``width``
            (:func:`param_matched_width`): All-CNN has one more conv per stage, so "performs as
            well" must hold at equal parameters too (``docs/study.md``, "Controls").
        batch_size, lr: training (AdamW).
        width: channels of the first stage (then 2x, 4x) of every model.
        capacity_widths: widths at which ``capacity_models`` are also trained and measured
            (centred condition, the same seeds and images): the capacity sweep
            (``docs/study.md``, "Capacity"). The main ``width`` is always part of it (its runs are
            the main study's). Empty: no sweep.
        padding: the convs' ``padding_mode`` in every condition but the padding ablation.
        n_train, n_test: cap on training / test images (class-balanced), None for all.
        n_eval: test images every model is measured on (the same for all: paired).
        fraction: canvas margin as a fraction of the objects' extent.
        augment_range: R; the augmented condition trains on shifts in ``[-R, R]^2`` and is
            measured in that range and beyond it.
        probe_offset: the position probe places objects at ``dx = -p`` or ``+p`` (class 0 / 1);
            ``2p`` is a multiple of the total stride, so the two placements differ by a
            circular shift the trunk is equivariant to.
        probe_epochs: epochs of position-probe training (a fixed budget: the probe asks whether
            position is learnable at all).
        n_profile: images for the per-layer equivariance profile.
        n_boot: bootstrap replicates for the intervals.
        margin: the margin every difference's interval is read against (in consistency, agreement
            or accuracy): beyond it "more" / "less", inside it "about the same", excluding 0 but
            reaching it "more" / "less" by an unresolved amount, else "inconclusive"
            (``docs/definitions.md``, "Intervals").
    """

    data: str = "mnist-5k"
    data_root: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    conditions: tuple[str, ...] = ("centred", "augmented")
    seeds: int = 2
    max_epochs: int = 8
    target_accuracy: float = 0.98
    schedule: str = "cosine"
    stop_at_target: bool = False
    shift_set: str = "matched"
    param_matched: tuple[str, ...] = ()
    batch_size: int = 64
    lr: float = 1e-2
    width: int = 16
    capacity_widths: tuple[int, ...] = ()
    capacity_models: tuple[str, ...] = CAPACITY_MODELS
    padding: str = "zeros"
    n_train: int | None = None
    n_test: int | None = None
    n_eval: int = 500
    fraction: float = 0.25
    augment_range: int = 4
    probe_offset: int = 8
    probe_epochs: int = 4
    n_profile: int = 16
    n_boot: int = 2000
    margin: float = 0.02

    def __post_init__(self) -> None:
        self._check_types()
        unknown = [m for m in self.models if m not in zoo_names()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {zoo_names()}")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise ValueError(f"unknown condition(s) {bad}; choose from {list(CONDITIONS)}")
        if not self.models or not self.conditions:
            raise ValueError("a study needs at least one model and one condition")
        for name in ("models", "conditions", "capacity_models"):
            twice = sorted({v for v in getattr(self, name) if getattr(self, name).count(v) > 1})
            if twice:
                raise ValueError(f"{name} lists {', '.join(twice)} more than once; give each once")
        for name in ("seeds", "max_epochs", "batch_size", "width", "n_eval", "augment_range", "probe_offset",
                     "probe_epochs", "n_profile", "n_boot"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_train", "n_test"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or None for all images), got {getattr(self, name)}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if not 0 < self.margin < 1:
            raise ValueError(f"margin must be in (0, 1), got {self.margin}")
        if any(w < 1 for w in self.capacity_widths) or len(set(self.capacity_widths)) != len(self.capacity_widths):
            raise ValueError(f"capacity_widths must be distinct widths >= 1, got {list(self.capacity_widths)}")
        unknown = [m for m in self.capacity_models if m not in zoo_names()]
        if unknown:
            raise ValueError(f"unknown capacity model(s) {unknown}; choose from {zoo_names()}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.shift_set not in SHIFT_SETS:
            raise ValueError(f"shift_set must be one of {list(SHIFT_SETS)}, got {self.shift_set!r}")
        unknown = [m for m in self.param_matched if m not in zoo_names()]
        if unknown:
            raise ValueError(f"unknown param_matched model(s) {unknown}; choose from {zoo_names()}")
        fc = [m for m in self.param_matched if zoo_spec(m).head == "fc"]
        if fc:
            raise ValueError(f"param_matched takes global-pool models (their parameter count does not depend on the "
                             f"input size), got {fc}")
        if self.padding not in ("zeros", "circular"):
            raise ValueError(f"padding must be 'zeros' or 'circular', got {self.padding!r}")

    def _check_types(self) -> None:
        """``ValueError`` naming the field when a value has the wrong type (a config read from a
        damaged or edited ``config.json`` / ``results.json``)."""
        for name, kind in _FIELD_TYPES.items():
            value = getattr(self, name)
            if name in _TUPLES:
                ok = isinstance(value, tuple) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
            else:
                ok = (value is None and name in _OPTIONAL) or (
                    isinstance(value, bool) if kind is bool else isinstance(value, kind) and not isinstance(value, bool))
            if not ok:
                kinds = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                what = f"a list of {kinds}" if name in _TUPLES else kinds
                raise ValueError(f"config field {name} must be {what}, got {value!r}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> StudyConfig:
        """The config of preset ``name`` (:data:`PRESETS`) with ``overrides`` applied."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
        fields = dict(PRESETS[name])
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    @property
    def is_smoke_test(self) -> bool:
        """True for the ``quick`` preset (on any data): a check of the pipeline, not evidence."""
        return self == StudyConfig.preset("quick", data=self.data, data_root=self.data_root)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in _TUPLES:
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming unknown or missing fields. A
        field the dict lacks (written before the field existed) takes the value that describes how
        such a study ran (:data:`_LEGACY_DEFAULTS`), else its default."""
        if not isinstance(d, dict):
            raise ValueError(f"a study config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown} (written by another shiftlab version?)")
        d = {**_LEGACY_DEFAULTS, **d}
        for key in _TUPLES:
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


_TUPLES = ("models", "conditions", "capacity_widths", "capacity_models", "param_matched")
#: Fields added with the third study design, and the values that describe studies run before them
#: (stopped at the target, constant learning rate, the residue shift set, no parameter-matched runs).
_LEGACY_DEFAULTS = {"schedule": "constant", "stop_at_target": True, "shift_set": "residues", "param_matched": ()}
_OPTIONAL = ("data_root", "n_train", "n_test")
#: The type of every field (of each element for :data:`_TUPLES`).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "data": str, "data_root": str, "models": str, "conditions": str, "seeds": int, "max_epochs": int,
    "target_accuracy": (int, float), "batch_size": int, "lr": (int, float), "width": int, "capacity_widths": int,
    "capacity_models": str, "padding": str, "n_train": int, "n_test": int, "n_eval": int, "fraction": (int, float),
    "augment_range": int, "probe_offset": int, "probe_epochs": int, "n_profile": int, "n_boot": int,
    "margin": (int, float), "schedule": str, "stop_at_target": bool, "shift_set": str, "param_matched": str,
}

#: Named presets: ``default`` answers both halves of the question in about 15 minutes on 2 cores
#: (5 models, centred and augmented, 2 seeds, an 8-epoch budget); ``quick`` is a smoke test of the
#: pipeline (not evidence); ``full`` is every downsampling kind x FC / GAP under the conditions
#: that answer the question (centred, augmented, circular padding, the position probe), 5 seeds, and
#: the parameter-matched All-CNN (``docs/study.md``, "Presets").
PRESETS: dict[str, dict] = {
    "default": {},
    "quick": dict(models=("strided_fc", "strided_gap", "maxpool_fc", "maxpool_gap"), seeds=2, max_epochs=3,
                  n_train=1000, n_test=300, n_eval=100, n_profile=4, n_boot=500, width=8, target_accuracy=0.9),
    "full": dict(models=FULL_MODELS, conditions=("centred", "augmented", "circular", "probe", "probe_circular"),
                 seeds=5, max_epochs=10, param_matched=("allconv_gap",)),
}
