"""Per-image, per-shift outcomes of a canvas measurement, bit-packed (``runs/KEY.shifts.npz``).

A run's per-image statistics (:data:`shiftlab.study.measurements.IMAGE_METRICS`) are means over
fixed groups of shifts. The bits behind them, whether image ``i`` at shift ``j`` gets its centred
prediction (``agree``) and whether it is classified right (``correct``), are kept too, one bit
each, so that any other group of shifts can be summarised and bootstrapped after the run without
measuring again (:meth:`ShiftBits.select`; ``docs/study.md``, "Measurement").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from shiftlab.io import write_atomic
from shiftlab.study.records import RecordError

__all__ = ["ShiftBits", "load_shift_bits", "save_shift_bits"]


@dataclass(frozen=True)
class ShiftBits:
    """Which images keep their centred prediction, and which are right, at every shift.

    Attributes:
        shifts: ``(S, 2)`` int64 ``(dy, dx)`` of every column.
        agree: ``(N, S)`` bool, ``c(T_d x) == c(x)``.
        correct: ``(N, S)`` bool, ``c(T_d x) == y``.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[1, 1, 2], [0, 3, 0]])
        >>> bits = ShiftBits.from_predictions(preds, torch.tensor([1, 3]), torch.tensor([[0, 0], [0, 1], [1, 0]]))
        >>> bits.agreement().tolist(), bits.accuracy().tolist()
        ([0.6666666666666666, 0.6666666666666666], [0.6666666666666666, 0.3333333333333333])
        >>> bits.select(bits.distances() == 1).agreement().tolist()
        [0.5, 0.5]
    """

    shifts: np.ndarray
    agree: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        s = self.shifts
        if not (isinstance(s, np.ndarray) and s.ndim == 2 and s.shape[1] == 2 and s.dtype == np.int64):
            raise ValueError(f"shifts must be an (S, 2) int64 array, got {getattr(s, 'shape', s)!r}")
        for name in ("agree", "correct"):
            a = getattr(self, name)
            if not (isinstance(a, np.ndarray) and a.dtype == np.bool_ and a.ndim == 2 and a.shape[1] == len(s)):
                raise ValueError(f"{name} must be an (N, {len(s)}) bool array, got {getattr(a, 'shape', a)!r}")
        if self.agree.shape != self.correct.shape:
            raise ValueError(f"agree {self.agree.shape} and correct {self.correct.shape} differ in shape")

    @classmethod
    def from_predictions(cls, predictions: Tensor, labels: Tensor, shifts: Tensor) -> ShiftBits:
        """From a prediction table ``(N, S)`` (column ``j`` at ``shifts[j]``; ``(0, 0)`` among them
        exactly once), the labels ``(N,)`` and the shifts ``(S, 2)``."""
        offsets = shifts.round().long()
        zero = (offsets == 0).all(dim=1).nonzero()
        if zero.numel() != 1:
            raise ValueError("the shift set must contain (0, 0) exactly once")
        centre = predictions[:, int(zero[0, 0])]
        return cls(offsets.cpu().numpy().astype(np.int64), (predictions == centre[:, None]).cpu().numpy(),
                   (predictions == labels[:, None]).cpu().numpy())

    @property
    def n_images(self) -> int:
        return int(self.agree.shape[0])

    def distances(self) -> np.ndarray:
        """``max(|dy|, |dx|)`` of every shift. ``(S,)`` int64."""
        return np.abs(self.shifts).max(axis=1)

    def select(self, columns: np.ndarray) -> ShiftBits:
        """The bits at the shifts ``columns`` (an ``(S,)`` bool mask or indices) only."""
        return ShiftBits(self.shifts[columns], self.agree[:, columns], self.correct[:, columns])

    def agreement(self) -> np.ndarray:
        """Per image, the share of the shifts at which it keeps its centred prediction (NaN with no
        shifts). ``(N,)`` float64."""
        return _row_mean(self.agree)

    def accuracy(self) -> np.ndarray:
        """Per image, the share of the shifts at which it is classified right. ``(N,)`` float64."""
        return _row_mean(self.correct)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file: ``shifts`` and the rows packed 8 shifts a byte
        (``numpy.packbits`` along the shifts)."""
        return {"shifts": self.shifts, "agree": np.packbits(self.agree, axis=1),
                "correct": np.packbits(self.correct, axis=1)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ShiftBits:
        """Inverse of :meth:`to_arrays`; ``ValueError`` when the arrays do not fit together."""
        shifts = np.asarray(arrays["shifts"])
        if shifts.dtype != np.int64 or shifts.ndim != 2:
            raise ValueError(f"shifts must be an (S, 2) int64 array, got {shifts.dtype} {shifts.shape}")
        n_shifts = shifts.shape[0]
        unpacked = []
        for name in ("agree", "correct"):
            packed = np.asarray(arrays[name])
            if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != (n_shifts + 7) // 8:
                raise ValueError(f"{name} must be (N, {(n_shifts + 7) // 8}) packed bytes, got {packed.dtype} {packed.shape}")
            unpacked.append(np.unpackbits(packed, axis=1, count=n_shifts).astype(bool))
        return cls(shifts, *unpacked)


def _row_mean(bits: np.ndarray) -> np.ndarray:
    if bits.shape[1] == 0:
        return np.full(bits.shape[0], np.nan)
    return bits.mean(axis=1, dtype=np.float64)


def save_shift_bits(path: Path, bits: ShiftBits, *, root: Path | None = None) -> None:
    """Write ``bits`` to ``path`` (``.npz``) atomically (:func:`shiftlab.io.write_atomic`; ``root``:
    the run directory it must stay in)."""
    arrays: dict[str, Any] = bits.to_arrays()
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays), root=root)


def load_shift_bits(path: Path) -> ShiftBits:
    """Read the bits :func:`save_shift_bits` wrote; :class:`~shiftlab.study.records.RecordError`
    when the file is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return ShiftBits.from_arrays({k: data[k] for k in ("shifts", "agree", "correct")})
    except (OSError, ValueError, EOFError, KeyError) as err:
        raise RecordError(f"{path} is damaged ({err}); delete it and its .json to redo that run") from err
