"""Training curves: training accuracy per epoch of every model, each seed a thin line, the target
accuracy a dashed line (``docs/study.md``, "Training budget")."""

from __future__ import annotations

import math

import matplotlib
from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from ..evidence import models
from .style import STYLE, colour, condition_label, integer_ticks, legend_below, linestyle, new_figure

__all__ = ["fig_training"]


def fig_training(results: StudyResults) -> Figure | None:
    conds = [c for c in results.config.get("conditions", []) if not c.startswith("probe")
             and any(r.condition == c and r.training.history for r in results.main_runs)]
    if not conds:
        return None
    target = results.config.get("target_accuracy")
    ncol = min(3, len(conds))
    nrow = math.ceil(len(conds) / ncol)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.7 * ncol + 0.3, 2.8 * nrow + 0.7)
        axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
        handles: dict[str, object] = {}
        labels: list[str] = []
        for i, cond in enumerate(conds):
            ax = axes[i // ncol][i % ncol]
            for m in models(results):
                for r in (r for r in results.main_runs if r.model == m and r.condition == cond):
                    epochs = [h["epoch"] for h in r.training.history]
                    acc = [h["train_acc"] for h in r.training.history]
                    (h,) = ax.plot(epochs, acc, lw=1.0, alpha=0.8, ls=linestyle(m), color=colour(m), marker=".", ms=3)
                    handles.setdefault(m, h)
            if target is not None:
                t = ax.axhline(target, color="#222222", ls="--", lw=1.0)
                handles.setdefault(f"target {target:g}", t)
            ax.set_title(condition_label(cond) + (" (trunk)" if cond.startswith("transfer") else ""))
            ax.set_xlabel("epoch")
            integer_ticks(ax.xaxis)
            if i % ncol == 0:
                ax.set_ylabel("training accuracy")
        for j in range(len(conds), nrow * ncol):
            axes[j // ncol][j % ncol].set_axis_off()
        labels = list(handles)
        legend_below(fig, list(handles.values()), labels)
    return fig
