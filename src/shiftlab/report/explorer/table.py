"""``explorer_table``: what the shift explorer shows, as one tidy table for a notebook
(``docs/explorer.md``): one row per run, evaluation image and position."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from shiftlab.study.records import RunRecord
from shiftlab.study.results import StudyResults, load_results

__all__ = ["ExplorerTable", "explorer_runs", "explorer_table"]


def explorer_runs(results: StudyResults) -> list[RunRecord]:
    """The runs of ``results`` that hold explorer data, in the order of ``results.runs``."""
    return [r for r in results.runs if r.explorer is not None]


def _missing_message(run_dir: str) -> str:
    """What to do when no run holds explorer data (a study run before the explorer existed)."""
    return (f"no run of {run_dir} holds shift-explorer data: the study predates it. `shiftlab report {run_dir} "
            f"--explorer` computes it from the run's checkpoints ({run_dir}/checkpoints/), then rebuilds the report")


@dataclass(frozen=True)
class ExplorerTable:
    """The explorer's data, one row per run, evaluation image and position ``(dy, dx)``.

    Every attribute is a column, a ``(rows,)`` NumPy array: ``key``, ``model``, ``condition``
    (str); ``seed``, ``width``, ``image`` (the image's index in the run's evaluation set, as in
    ``runs/KEY.npz``), ``label``, ``dy``,
    ``dx``, ``predicted`` (the top-1 class) (int64); ``probability`` (float64, the softmax
    probability of the predicted class as stored, ``k / 255``); ``correct`` (predicted == label),
    ``agrees`` (predicted == the class at ``(0, 0)``), ``multiple_of_stride`` (``dy`` and ``dx``
    multiples of the run's total stride S), ``in_shift_set`` (one of the study's canvas shifts,
    which its statistics count) (bool).

    ``pandas.DataFrame(table.columns())`` makes a data frame; :meth:`to_csv` writes CSV.
    """

    key: np.ndarray
    model: np.ndarray
    condition: np.ndarray
    seed: np.ndarray
    width: np.ndarray
    image: np.ndarray
    label: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    correct: np.ndarray
    agrees: np.ndarray
    multiple_of_stride: np.ndarray
    in_shift_set: np.ndarray

    def __len__(self) -> int:
        return int(self.key.shape[0])

    def columns(self) -> dict[str, np.ndarray]:
        """Column name -> ``(rows,)`` array, in the order above."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV text (a header, then one line per row); also written to ``path`` when given."""
        cols = self.columns()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        probability = [f"{p:.6g}" for p in self.probability]
        values = [probability if name == "probability" else col.tolist() for name, col in cols.items()]
        writer.writerows(zip(*values, strict=True))
        text = buf.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def _run_columns(run: RunRecord) -> dict[str, np.ndarray]:
    assert run.explorer is not None
    ex = run.explorer
    classes = ex.class_table().astype(np.int64)  # [n, P]
    n, p = classes.shape
    positions = ex.positions()  # [P, 2]
    centre = int(np.flatnonzero((positions == 0).all(axis=1))[0])
    labels = np.asarray(ex.labels, dtype=np.int64)
    measured = {tuple(s) for s in run.profile.shifts} if run.profile is not None else set()
    in_set = np.array([(int(dy), int(dx)) in measured for dy, dx in positions])
    stride = run.total_stride
    return {
        "key": np.full(n * p, run.key, dtype=object), "model": np.full(n * p, run.model, dtype=object),
        "condition": np.full(n * p, run.condition, dtype=object), "seed": np.full(n * p, run.seed, dtype=np.int64),
        "width": np.full(n * p, run.width, dtype=np.int64), "image": np.repeat(np.asarray(ex.images, dtype=np.int64), p),
        "label": np.repeat(labels, p), "dy": np.tile(positions[:, 0], n), "dx": np.tile(positions[:, 1], n),
        "predicted": classes.reshape(-1), "probability": ex.probability_table().reshape(-1),
        "correct": (classes == labels[:, None]).reshape(-1),
        "agrees": (classes == classes[:, centre:centre + 1]).reshape(-1),
        "multiple_of_stride": np.tile(((positions % stride) == 0).all(axis=1), n), "in_shift_set": np.tile(in_set, n),
    }


def explorer_table(results_or_run_dir: StudyResults | str | Path) -> ExplorerTable:
    """What the shift explorer shows, for every run that holds explorer data (every seed and
    width; ``docs/explorer.md``).

    Args:
        results_or_run_dir: :class:`~shiftlab.study.results.StudyResults`, a run directory or
            its ``results.json``.

    Returns:
        :class:`ExplorerTable`: ``runs x n x P`` rows, ``n`` the explorer's images per run (16 in
        the study) and ``P = (2 r + 1)^2`` the positions of ``[-r, r]^2`` (441 on MNIST's canvas,
        ``r = 10``), images then positions row-major (``dy`` outer).

    Raises:
        ValueError: no run holds explorer data (the message says how to compute it).

    Example::

        import pandas as pd
        from shiftlab.report import explorer_table
        frame = pd.DataFrame(explorer_table("runs/study").columns())
        frame.query("model == 'strided_gap' and image == 0 and dy == 0")[["dx", "predicted", "probability"]]
    """
    where = "RUN_DIR"
    if isinstance(results_or_run_dir, StudyResults):
        results = results_or_run_dir
    else:
        path = Path(results_or_run_dir)
        where = str(path.parent if path.is_file() else path)
        results = load_results(path)
    runs = explorer_runs(results)
    if not runs:
        raise ValueError(_missing_message(where))
    parts = [_run_columns(r) for r in runs]
    return ExplorerTable(**{f.name: np.concatenate([part[f.name] for part in parts]) for f in fields(ExplorerTable)})
