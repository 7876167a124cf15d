"""Configuration of a study run (saved as ``config.json`` in the run directory)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from shiftlab.zoo import names as zoo_names

__all__ = ["CONDITIONS", "StudyConfig"]

#: Training conditions: objects always centred, or randomly translated on the canvas.
CONDITIONS = ("centred", "augmented")


@dataclass(frozen=True)
class StudyConfig:
    """What to train and measure.

    Attributes:
        data: dataset name (:func:`shiftlab.data.names`); ``data_root`` where its files are.
        models: zoo architectures to train.
        seeds: number of seeds (0, 1, ...) per architecture and condition.
        epochs, batch_size, lr: training (AdamW).
        width: channels of the first stage (then 2x, 4x).
        n_train, n_test: cap on training / test images (class-balanced), None for all.
        n_eval: test images used for the shift measurements (every canvas position each).
        fraction: canvas margin as a fraction of the object size (shifts of this much exist).
        n_circular: circular shifts sampled (seeded) over the full period for circular consistency.
        n_profile: images for the per-layer equivariance profile.
    """

    data: str = "mnist-5k"
    data_root: str | None = None
    models: tuple[str, ...] = field(default_factory=lambda: tuple(zoo_names()))
    conditions: tuple[str, ...] = CONDITIONS
    seeds: int = 3
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 8
    n_train: int | None = None
    n_test: int | None = None
    n_eval: int = 64
    fraction: float = 0.25
    n_circular: int = 48
    n_profile: int = 16

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in zoo_names()]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {zoo_names()}")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise ValueError(f"unknown condition(s) {bad}; choose from {list(CONDITIONS)}")
        if not self.models or not self.conditions:
            raise ValueError("a study needs at least one model and one condition")
        for name in ("seeds", "epochs", "batch_size", "width", "n_eval", "n_circular", "n_profile"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def quick(cls, **overrides: object) -> StudyConfig:
        """A small run that finishes in about a minute and a half on 2 cores (smoke test, not evidence)."""
        preset = dict(seeds=1, epochs=4, n_train=2000, n_test=500, n_eval=32, n_circular=16, n_profile=8)
        preset.update(overrides)
        return cls(**preset)  # type: ignore[arg-type]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["models"], d["conditions"] = list(self.models), list(self.conditions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        d = dict(d)
        d["models"], d["conditions"] = tuple(d["models"]), tuple(d["conditions"])
        return cls(**d)
