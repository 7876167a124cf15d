"""What the segmentation study trains and measures (``docs/segmentation.md``, "The study").

The factorial is the U-Net's downsampling x upsampling (:func:`shiftlab.zoo.unet_names`), under
three training conditions (:data:`SEG_CONDITIONS`), several seeds each, every run trained for the
same epoch budget under a cosine learning rate and measured on the same test scenes (paired).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shiftlab.zoo import unet_names

__all__ = ["SEG_CONDITIONS", "SEG_PRESETS", "SegCondition", "SegStudyConfig", "seg_condition"]


@dataclass(frozen=True)
class SegCondition:
    """One training condition of the segmentation study.

    Attributes:
        name: the condition's name.
        description: one line for the report.
        augment: train on scenes moved by random zero-filled shifts (masks moved with them).
        circular: circular padding in every conv and circular shifts in the measurement (the
            setting in which APS down + APS up is exactly equivariant).
    """

    name: str
    description: str
    augment: bool = False
    circular: bool = False

    @property
    def mode(self) -> str:
        """The shifts it is measured under: ``circular`` or ``zeros`` (the scene moves on its canvas)."""
        return "circular" if self.circular else "zeros"


_ALL = (
    SegCondition("plain", "scenes as drawn (objects anywhere on the canvas), zero padding; zero-filled shifts"),
    SegCondition("augmented", "plus random zero-filled shifts within [-M, M]^2 in training (masks moved with "
                 "the scenes), zero padding; zero-filled shifts", augment=True),
    SegCondition("circular", "scenes as drawn, circular padding in every conv; circular shifts (where APS down + "
                 "APS up is exactly equivariant)", circular=True),
)
#: Condition names in report order.
SEG_CONDITIONS: tuple[str, ...] = tuple(c.name for c in _ALL)
_BY_NAME = {c.name: c for c in _ALL}


def seg_condition(name: str) -> SegCondition:
    """The :class:`SegCondition` called ``name``."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown segmentation condition {name!r}; choose from {list(SEG_CONDITIONS)}")
    return _BY_NAME[name]


@dataclass(frozen=True)
class SegStudyConfig:
    """The segmentation study's identity (``--resume`` checks it).

    Attributes:
        data: the objects' source dataset (``mnist-5k`` or ``fashion-mnist``; any registered one
            with a train and a test split works).
        models: U-Nets (``unet_<down>_<up>``, :func:`shiftlab.zoo.unet_names`).
        conditions: :data:`SEG_CONDITIONS` to train under.
        seeds: seeds per model and condition.
        epochs: the training budget (every run trains all of it; cosine learning rate).
        target_accuracy: the last epoch's training pixel accuracy a run must reach to count as
            trained (every pixel counts, background included; a run below it is flagged in the
            report, not dropped).
        batch_size, lr: training (AdamW).
        width, levels: the U-Nets' first width and number of downsamplings (total stride ``2 ** levels``).
        n_train, n_test: training scenes (from the source's training split) and test scenes (its
            test split), the same for every run.
        canvas: the scenes' side in pixels.
        max_shift: the largest shift measured and trained with; scenes keep every object this far
            from the border, so no object leaves the canvas under a measured shift.
        n_profile: test scenes of the per-layer profile (seed 0 of each model and condition).
        n_boot: bootstrap replicates of the intervals.
        margin: the margin differences are read against (agreement and mIoU), as in the
            classification study (``docs/definitions.md``, "Intervals").
    """

    data: str = "mnist-5k"
    models: tuple[str, ...] = tuple(unet_names())
    conditions: tuple[str, ...] = SEG_CONDITIONS
    seeds: int = 3
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-2
    target_accuracy: float = 0.98
    width: int = 8
    levels: int = 3
    n_train: int = 2000
    n_test: int = 300
    canvas: int = 64
    max_shift: int = 8
    n_profile: int = 16
    n_boot: int = 2000
    margin: float = 0.02

    def __post_init__(self) -> None:
        for name in ("models", "conditions"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a non-empty list of names, got {value!r}")
            if len(set(value)) != len(value):
                raise ValueError(f"{name} lists a name more than once: {list(value)}")
        unknown = [m for m in self.models if m not in unet_names()]
        if unknown:
            raise ValueError(f"unknown U-Net(s) {unknown}; choose from {unet_names()}")
        for c in self.conditions:
            seg_condition(c)
        ints = ("seeds", "epochs", "batch_size", "width", "levels", "n_train", "n_test", "canvas", "max_shift",
                "n_profile", "n_boot")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.data, str) or not self.data:
            raise ValueError(f"data must be a dataset name, got {self.data!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not (isinstance(self.target_accuracy, (int, float)) and 0 < self.target_accuracy <= 1):
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy!r}")
        if not (isinstance(self.margin, (int, float)) and 0 < self.margin < 1):
            raise ValueError(f"margin must be in (0, 1), got {self.margin!r}")
        if self.canvas % self.stride:
            raise ValueError(f"canvas {self.canvas} must be a multiple of the total stride {self.stride} "
                             f"(2 ** levels)")
        if self.max_shift < self.stride:
            raise ValueError(f"max_shift {self.max_shift} must reach the total stride {self.stride}: the aligned "
                             "shifts are the multiples of it")
        if 2 * self.max_shift >= self.canvas:
            raise ValueError(f"max_shift {self.max_shift} leaves no room for objects on a {self.canvas} px canvas")

    @property
    def stride(self) -> int:
        """The U-Nets' total stride ``2 ** levels``."""
        return int(2**self.levels)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> SegStudyConfig:
        """The config of preset ``name`` (:data:`SEG_PRESETS`) with the ``overrides`` that are not None."""
        if name not in SEG_PRESETS:
            raise ValueError(f"unknown segmentation preset {name!r}; choose from {list(SEG_PRESETS)}")
        fields = {**SEG_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**fields)

    @property
    def is_smoke_test(self) -> bool:
        """True for the ``quick`` preset (on any data): a check of the pipeline, not evidence."""
        return self == SegStudyConfig.preset("quick", data=self.data)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["models"], d["conditions"] = list(self.models), list(self.conditions)
        return d

    @classmethod
    def from_dict(cls, d: object) -> SegStudyConfig:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming unknown fields or bad values."""
        if not isinstance(d, dict):
            raise ValueError(f"a segmentation study config must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown} (written by another shiftlab version?)")
        fields: dict[str, Any] = {k: tuple(v) if k in ("models", "conditions") and isinstance(v, list) else v
                                  for k, v in d.items()}
        return cls(**fields)  # the values are checked in __post_init__


#: ``full``: the nine U-Nets x three conditions x 3 seeds (81 runs, an estimated 4 hours on 2 cores);
#: ``quick``: a smoke test of the pipeline (two U-Nets, tiny budget; not evidence).
SEG_PRESETS: dict[str, dict] = {
    "full": {},
    "quick": dict(models=("unet_maxpool_transposed", "unet_aps_aps"), conditions=("plain", "circular"), seeds=2,
                  epochs=1, n_train=64, n_test=16, n_profile=4, n_boot=200, width=4),
}
