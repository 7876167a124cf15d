"""What the study records about each trained model, as typed objects with ``to_dict`` /
``from_dict`` (the JSON of ``runs/KEY.json`` and of ``results.json``'s ``runs``).

A run's per-image statistics (the bootstrap's input) are kept beside its record, in
``runs/KEY.npz`` (plain float64 arrays, read with ``allow_pickle=False``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SCHEMA_VERSION", "Periodicity", "RecordError", "RunRecord", "ShiftProfile", "TrainingRecord",
           "load_per_image", "save_per_image"]

#: Version of the run-record and results format; 2 since the factorial study.
SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A saved record that cannot be read back (damaged, or from another shiftlab version)."""


@dataclass
class Periodicity:
    """The aliasing signature: agreement with the unshifted prediction by residue of the shift
    modulo the total stride S (``docs/definitions.md``, "Aligned and unaligned agreement").

    ``residue_agreement[ry][rx]``: mean over images and over the non-zero shifts ``d`` with
    ``d mod S = (ry, rx)`` of ``[c(T_d x) = c(x)]`` (None where no shift has that residue);
    ``agreement_by_dx``: the agreement at ``(0, dx)`` for ``dx`` in ``dx_values``.
    """

    stride: int
    residue_agreement: list[list[float | None]]
    dx_values: list[int]
    agreement_by_dx: list[float]


@dataclass
class ShiftProfile:
    """Means over the evaluation images at each canvas shift ``shifts[j] = [dy, dx]``."""

    shifts: list[list[int]]
    accuracy: list[float]
    agreement: list[float]


@dataclass
class TrainingRecord:
    """How a model was trained and whether it converged.

    ``history`` has one row per epoch (``epoch``, ``train_loss``, ``train_acc``, ``seconds``);
    under ``transfer`` conditions ``head_history`` has the new head's epochs. ``converged`` is
    whether the last phase reached the target training accuracy (None: no target, the probe).
    """

    epochs: int
    converged: bool | None
    target_accuracy: float | None
    final_train_accuracy: float
    final_train_loss: float
    seconds: float
    history: list[dict]
    head_history: list[dict] = field(default_factory=list)


@dataclass
class RunRecord:
    """One trained model (zoo model x condition x seed) and its measurements.

    ``downsampling`` and ``head`` come from the zoo registry at study time
    (:func:`shiftlab.zoo.spec`), never from names. ``summary`` holds the means over images of
    the per-image statistics (:data:`shiftlab.study.measurements.IMAGE_METRICS`, NaN-aware) and
    ``test_accuracy``; ``profile`` and ``periodicity`` the canvas measurement (None for the
    position probe), ``equivariance`` the per-layer profile
    (:meth:`shiftlab.EquivarianceResult.to_dict`).
    """

    key: str
    model: str
    downsampling: str
    head: str
    padding: str
    condition: str
    seed: int
    width: int
    params: int
    macs: int
    receptive_field: int
    total_stride: int
    training: TrainingRecord
    summary: dict[str, float | None]
    profile: ShiftProfile | None
    periodicity: Periodicity | None
    equivariance: dict | None
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "record") -> RunRecord:
        """Read a record back; raises :class:`RecordError` naming ``source`` when it is malformed."""
        try:
            if not isinstance(d, dict):
                raise TypeError(f"expected a JSON object, got {type(d).__name__}")
            d = dict(d)
            d["training"] = TrainingRecord(**d["training"])
            d["profile"] = None if d.get("profile") is None else ShiftProfile(**d["profile"])
            d["periodicity"] = None if d.get("periodicity") is None else Periodicity(**d["periodicity"])
            return cls(**d)
        except (KeyError, TypeError) as err:
            raise RecordError(f"{source} is not a valid run record ({type(err).__name__}: {err}); delete it to "
                              "redo that run") from err


def save_per_image(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (name -> ``(N,)`` float64) to ``path`` (``.npz``) atomically."""
    tmp = path.with_name(path.name + ".tmp.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
    tmp.replace(path)


def load_per_image(path: Path) -> dict[str, np.ndarray]:
    """Read a run's per-image arrays; :class:`RecordError` when the file is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise RecordError(f"{path} is damaged ({err}); delete it and its .json to redo that run") from err
