"""Configuration of a study run (saved as ``config.json`` in the run directory) and its presets.

The design is described in ``docs/study.md``: a factorial of downsampling x head (the zoo,
:mod:`shiftlab.zoo`), trained under several conditions (:mod:`.conditions`), several seeds each,
measured on the same evaluation images (paired).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shiftlab.study.conditions import CONDITIONS
from shiftlab.zoo import names as zoo_names

__all__ = ["CAPACITY_MODELS", "DEFAULT_MODELS", "PRESETS", "StudyConfig"]

#: The default run's models: the three decisive downsamplings (plain strided conv = the FCN's,
#: max-pool = the classic CNN's, blurred strided conv = the anti-aliased FCN) x the two heads of
#: the question (fully connected; global average pool). A balanced 3 x 2 factorial.
DEFAULT_MODELS = ("strided_fc", "strided_gap", "maxpool_fc", "maxpool_gap", "blurstrided_fc", "blurstrided_gap")
#: The models of the question's key pairs (the FCN, the classic CNN, the max-pool GAP network, the
#: anti-aliased FCN): the capacity sweep trains them at every width of ``capacity_widths``.
CAPACITY_MODELS = ("strided_gap", "maxpool_fc", "maxpool_gap", "blurstrided_gap")


@dataclass(frozen=True)
class StudyConfig:
    """What to train and measure. Every field is part of the run's identity (``--resume`` checks it).

    Attributes:
        data: dataset name (:func:`shiftlab.data.names`); ``data_root`` where its files are.
        models: zoo models (``<downsampling>_<head>``) to train.
        conditions: training conditions (:data:`shiftlab.study.conditions.CONDITIONS`).
        seeds: seeds (0, 1, ...) per model and condition.
        max_epochs: the most epochs a model trains; it stops earlier at ``target_accuracy``.
        target_accuracy: training accuracy a model must reach to count as converged
            (``docs/study.md``, "Convergence"); a model that does not is flagged, never compared
            on performance.
        batch_size, lr: training (AdamW, constant learning rate).
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
        margin: differences smaller than this (in consistency, agreement or accuracy) count as
            "about the same" (``docs/definitions.md``, "Intervals").
    """

    data: str = "mnist-5k"
    data_root: str | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    conditions: tuple[str, ...] = ("centred", "augmented")
    seeds: int = 3
    max_epochs: int = 20
    target_accuracy: float = 0.98
    batch_size: int = 64
    lr: float = 3e-3
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
                ok = (value is None and name in _OPTIONAL) or (isinstance(value, kind) and not isinstance(value, bool))
            if not ok:
                what = f"a list of {kind.__name__}" if name in _TUPLES else " or ".join(
                    k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise ValueError(f"config field {name} must be {what}, got {value!r}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> StudyConfig:
        """The config of preset ``name`` (:data:`PRESETS`) with ``overrides`` applied."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
        fields = dict(PRESETS[name])
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)  # type: ignore[arg-type]

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
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming unknown or missing fields."""
        if not isinstance(d, dict):
            raise ValueError(f"a study config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown} (written by another shiftlab version?)")
        d = dict(d)
        for key in _TUPLES:
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


_TUPLES = ("models", "conditions", "capacity_widths", "capacity_models")
_OPTIONAL = ("data_root", "n_train", "n_test")
#: The type of every field (of each element for :data:`_TUPLES`).
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "data": str, "data_root": str, "models": str, "conditions": str, "seeds": int, "max_epochs": int,
    "target_accuracy": (int, float), "batch_size": int, "lr": (int, float), "width": int, "capacity_widths": int,
    "capacity_models": str, "padding": str, "n_train": int, "n_test": int, "n_eval": int, "fraction": (int, float),
    "augment_range": int, "probe_offset": int, "probe_epochs": int, "n_profile": int, "n_boot": int,
    "margin": (int, float),
}

#: Named presets: ``default`` answers both halves of the question in ~13 minutes on 2 cores;
#: ``quick`` is a smoke test of the pipeline (not evidence); ``full`` is every factorial cell,
#: every condition and 5 seeds, with the capacity sweep of the key pairs at widths 8 and 32.
PRESETS: dict[str, dict] = {
    "default": {},
    "quick": dict(models=("strided_fc", "strided_gap", "maxpool_fc", "maxpool_gap"), seeds=2, max_epochs=3,
                  n_train=1000, n_test=300, n_eval=100, n_profile=4, n_boot=500, width=8, target_accuracy=0.9),
    "full": dict(models=tuple(zoo_names()), conditions=CONDITIONS, seeds=5, capacity_widths=(8, 32)),
}
