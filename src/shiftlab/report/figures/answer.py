"""The answer's figure: agreement with the centred prediction against the distance the object
moved, for the two FCNs, the two max-pool networks and the anti-aliased FCN (centred training),
with the multiples of the total stride apart (``docs/definitions.md``, "Distance-matched signature")."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from ..answer import CLASSIC, FCNS, SAME_HEAD
from ..answer_text import FCN_NAMES
from .style import STYLE, colour, integer_ticks, legend_below, linestyle, new_figure

__all__ = ["ANSWER_FIGURE", "ANSWER_MODELS", "fig_answer", "split_by_alignment"]

#: The figure's name in :data:`shiftlab.report.figures.FIGURES` (the page shows it beside the answer).
ANSWER_FIGURE = "answer"

#: The models the figure draws, in legend order, with their names.
ANSWER_MODELS = {**{m: FCN_NAMES[m] for m in FCNS}, CLASSIC: "classic max-pool CNN", SAME_HEAD: "max-pool GAP network",
                 "blurstrided_gap": "anti-aliased FCN"}


def split_by_alignment(shifts: list[list[int]], values: list[float], stride: int) -> tuple[dict[int, float], dict[int, float]]:
    """Mean of ``values`` per distance ``max(|dy|, |dx|)``: over the shifts that are not multiples of
    ``stride`` (with the zero shift), and over the non-zero multiples.

    Example:
        >>> split_by_alignment([[0, 0], [0, 1], [0, 8], [8, 4]], [1.0, 0.5, 0.9, 0.3], 8)
        ({0: 1.0, 1: 0.5, 8: 0.3}, {8: 0.9})
    """
    offsets = np.asarray(shifts)
    v = np.asarray(values, dtype=float)
    d = np.abs(offsets).max(axis=1)
    aligned = (offsets % stride == 0).all(axis=1) & (d > 0)
    return ({int(k): float(v[(d == k) & ~aligned].mean()) for k in np.unique(d[~aligned])},
            {int(k): float(v[(d == k) & aligned].mean()) for k in np.unique(d[aligned])})


def fig_answer(results: StudyResults) -> Figure | None:
    runs = {m: [r for r in results.main_runs if r.model == m and r.condition == "centred" and r.profile is not None]
            for m in ANSWER_MODELS}
    runs = {m: rs for m, rs in runs.items() if rs}
    if not runs:
        return None
    stride = next(iter(runs.values()))[0].total_stride
    with matplotlib.rc_context(STYLE):
        fig = new_figure(5.6, 4.9)
        ax = fig.subplots()
        offsets = np.linspace(-0.3, 0.3, len(runs))  # the stars side by side: they often coincide near 1
        for (m, rs), dx in zip(runs.items(), offsets, strict=True):
            parts = [split_by_alignment(r.profile.shifts, r.profile.agreement, stride) for r in rs if r.profile]
            other = {k: np.mean([p[0][k] for p in parts]) for k in parts[0][0]}
            multiple = {k: np.mean([p[1][k] for p in parts]) for k in parts[0][1]}
            ax.plot(list(other), list(other.values()), ls=linestyle(m), color=colour(m), lw=1.8, marker="o", ms=3,
                    label=f"{ANSWER_MODELS[m]} ({m})")
            ax.plot([k + dx for k in multiple], list(multiple.values()), ls="none", marker="*", ms=13, color=colour(m),
                    markeredgecolor="#222222", markeredgewidth=0.6)
        ax.plot([], [], ls="none", marker="*", ms=11, color="#ffffff", markeredgecolor="#222222",
                label=f"stars: the multiples of S = {stride} (aligned shifts)")
        ax.axvline(stride, color="#888888", lw=0.8, ls=":")
        ax.set_xlabel("shift distance max(|dy|, |dx|) [px]")
        ax.set_ylabel("agreement with the centred prediction\n(mean over shifts, images, seeds)")
        ax.set_ylim(0, 1.02)
        integer_ticks(ax.xaxis)
        handles, labels = ax.get_legend_handles_labels()
        legend_below(fig, handles, labels)
    return fig
