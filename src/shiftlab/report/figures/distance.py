"""Accuracy against the distance the object moved on the canvas (Chebyshev distance
max(|dy|, |dx|)), mean over shifts at that distance and seeds (``docs/definitions.md``,
"Accuracy by shift")."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from ..evidence import models
from .style import STYLE, colour, condition_label, legend_below, linestyle, new_figure

__all__ = ["accuracy_by_distance", "fig_distance"]


def accuracy_by_distance(shifts: list[list[int]], accuracy: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances present and the mean accuracy at each.

    Shape: shifts ``(|S|, 2)``, accuracy ``(|S|,)`` -> ``(D,)``, ``(D,)``.

    Example:
        >>> accuracy_by_distance([[0, 0], [0, 1], [1, 1]], [1.0, 0.5, 0.7])
        (array([0, 1]), array([1. , 0.6]))
    """
    d = np.abs(np.asarray(shifts)).max(axis=1)
    acc = np.asarray(accuracy, dtype=float)
    levels = np.unique(d)
    return levels, np.array([acc[d == k].mean() for k in levels])


def fig_distance(results: StudyResults) -> Figure | None:
    conds = [c for c in ("centred", "augmented", "circular")
             if any(r.condition == c and r.profile is not None for r in results.runs)]
    if not conds:
        return None
    in_range = results.config.get("augment_range")
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.8 * len(conds) + 0.4, 3.6)
        axes = fig.subplots(1, len(conds), sharey=True, squeeze=False)[0]
        handles = {}
        for ax, cond in zip(axes, conds):
            for m in models(results):
                runs = [r for r in results.runs if r.model == m and r.condition == cond and r.profile is not None]
                if not runs:
                    continue
                curves = [accuracy_by_distance(r.profile.shifts, r.profile.accuracy) for r in runs]
                x = curves[0][0]
                (h,) = ax.plot(x, np.mean([c[1] for c in curves], axis=0), marker="o", ms=3, lw=1.6, ls=linestyle(m),
                               color=colour(m))
                handles.setdefault(m, h)
            if cond == "augmented" and in_range:
                r = ax.axvline(in_range, color="#444444", ls=":", lw=1.1)
                handles.setdefault(f"training range R = {in_range}", r)
            ax.set_title(condition_label(cond))
            ax.set_xlabel("shift distance max(|dy|, |dx|) [px]")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel("accuracy (mean over shifts and seeds)")
        legend_below(fig, list(handles.values()), list(handles))
    return fig
