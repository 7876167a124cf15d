"""Accuracy and agreement with the unshifted prediction against the distance the object moved on
the canvas (Chebyshev distance max(|dy|, |dx|)), mean over shifts at that distance and seeds
(``docs/definitions.md``, "Accuracy by shift", "Clean consistency")."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from ..evidence import models
from .style import STYLE, colour, condition_label, integer_ticks, legend_below, linestyle, new_figure

__all__ = ["by_distance", "fig_distance"]

#: The rows of the figure: (ShiftProfile field, y label).
_ROWS = (("accuracy", "accuracy"), ("agreement", "agreement with the\nunshifted prediction"))


def by_distance(shifts: list[list[int]], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances present and the mean of ``values`` (per shift) at each.

    Shape: shifts ``(|S|, 2)``, values ``(|S|,)`` -> ``(D,)``, ``(D,)``.

    Example:
        >>> by_distance([[0, 0], [0, 1], [1, 1]], [1.0, 0.5, 0.7])
        (array([0, 1]), array([1. , 0.6]))
    """
    d = np.abs(np.asarray(shifts)).max(axis=1)
    v = np.asarray(values, dtype=float)
    levels = np.unique(d)
    return levels, np.array([v[d == k].mean() for k in levels])


def fig_distance(results: StudyResults) -> Figure | None:
    conds = [c for c in ("centred", "augmented", "circular")
             if any(r.condition == c and r.profile is not None for r in results.main_runs)]
    if not conds:
        return None
    in_range = results.config.get("augment_range")
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.8 * len(conds) + 0.4, 6.4)
        grid = fig.subplots(len(_ROWS), len(conds), sharey="row", sharex=True, squeeze=False)
        handles: dict[str, object] = {}
        for row, (field, label) in zip(grid, _ROWS, strict=True):
            for ax, cond in zip(row, conds, strict=True):
                for m in models(results):
                    runs = [r for r in results.main_runs if r.model == m and r.condition == cond and r.profile is not None]
                    if not runs:
                        continue
                    curves = [by_distance(r.profile.shifts, getattr(r.profile, field)) for r in runs if r.profile]
                    (h,) = ax.plot(curves[0][0], np.mean([c[1] for c in curves], axis=0), marker="o", ms=3, lw=1.6,
                                   ls=linestyle(m), color=colour(m))
                    handles.setdefault(m, h)
                if cond == "augmented" and in_range:
                    r = ax.axvline(in_range, color="#444444", ls=":", lw=1.1)
                    handles.setdefault(f"training range R = {in_range}", r)
                integer_ticks(ax.xaxis)
            row[0].set_ylabel(f"{label}\n(mean over shifts, seeds)")
        for ax, cond in zip(grid[0], conds, strict=True):
            ax.set_title(condition_label(cond))
        for ax in grid[-1]:
            ax.set_xlabel("shift distance max(|dy|, |dx|) [px]")
        legend_below(fig, list(handles.values()), list(handles))
    return fig
