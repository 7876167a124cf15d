"""Figures of means and differences with their 95% intervals: consistency per cell, transfer and
the position probe, the factorial effects (``docs/definitions.md``, "Intervals")."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED, Interval
from shiftlab.study.results import StudyResults

from ..evidence import cells, effect_outcome, effects, models
from .style import STYLE, colour, condition_label, legend_below, new_figure

__all__ = ["fig_consistency", "fig_effects", "fig_transfer_probe"]


def _errorbar(ax, y: float, iv: Interval, colour_: str, filled: bool, horizontal: bool = True,
              dashed: bool = False) -> object:
    err = [[max(iv.estimate - iv.low, 0.0)], [max(iv.high - iv.estimate, 0.0)]]
    kw = dict(fmt="o", ms=6, color=colour_, mfc=colour_ if filled else "white", mec=colour_, elinewidth=1.6, capsize=3)
    if horizontal:
        h = ax.errorbar([iv.estimate], [y], xerr=err, **kw)
    else:
        h = ax.errorbar([y], [iv.estimate], yerr=err, **kw)
    if dashed:
        for bars in h.lines[2]:
            bars.set_linestyle((0, (3, 2)))
    return h


def fig_consistency(results: StudyResults) -> Figure | None:
    conds = [c for c in ("centred", "augmented", "circular") if cells(results, c)]
    if not conds:
        return None
    names = models(results)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.6 * len(conds) + 1.4, 0.34 * len(names) + 1.6)
        axes = fig.subplots(1, len(conds), sharey=True, squeeze=False)[0]
        marks: dict[str, object] = {}
        for ax, cond in zip(axes, conds, strict=True):
            for i, m in enumerate(names):
                cell = results.analysis.cell(m, cond)
                if cell is None:
                    continue
                for off, metric, filled in ((-0.15, "consistency", True), (0.15, "consistency_correct", False)):
                    if metric in cell.metrics:
                        h = _errorbar(ax, i + off, cell.metrics[metric], colour(m), filled)
                        marks.setdefault(metric, h)
            ax.set_title(condition_label(cond))
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("consistency [95% CI]")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(np.arange(len(names)), names)
        axes[0].invert_yaxis()
        for label, colour_ in zip(axes[0].get_yticklabels(), [colour(m) for m in names], strict=True):
            label.set_color(colour_)
        legend_below(fig, list(marks.values()), ["consistency (filled)", "conditional consistency (open): images "
                                                 "correct at the centre"][: len(marks)])
    return fig


def fig_transfer_probe(results: StudyResults) -> Figure | None:
    names = models(results)
    panels: list[tuple[str, str, str, str, str, float | None]] = []
    if any(results.analysis.cell(m, "transfer") for m in names):
        panels.append(("transfer", "transfer_control", "consistency", "consistency on the held-out classes",
                       "Transfer: trunk trained on translated other classes vs on centred ones", None))
    if any(results.analysis.cell(m, "probe") for m in names):
        panels.append(("probe", "probe_circular", "probe_accuracy", "position-probe accuracy",
                       "Position probe: zero vs circular padding", 0.5))
    if not panels:
        return None
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.0, 3.9)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        handles: dict[str, object] = {}
        for ax, (first, second, metric, ylabel, title, chance) in zip(axes, panels, strict=True):
            x = np.arange(len(names))
            for j, (cond, hatch) in enumerate(((first, ""), (second, "///"))):
                for i, m in enumerate(names):
                    cell = results.analysis.cell(m, cond)
                    iv = cell.metrics.get(metric) if cell is not None else None
                    if iv is None:
                        continue
                    pos = i - 0.2 + 0.4 * j
                    ax.bar(pos, iv.estimate, 0.38, color=colour(m), alpha=1.0 if j == 0 else 0.55, hatch=hatch,
                                 edgecolor="white" if j == 0 else "#333333", linewidth=0.4)
                    ax.errorbar([pos], [iv.estimate], yerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]],
                                fmt="none", ecolor="#222222", elinewidth=1.0, capsize=2.5)
                    handles.setdefault(condition_label(cond), Patch(
                        facecolor="#777777" if j == 0 else "#bbbbbb", hatch=hatch, edgecolor="#333333"))
            if chance is not None:
                handles.setdefault("chance", ax.axhline(chance, color="#222222", ls="--", lw=1.0))
            ax.set_xticks(x, names, rotation=35, ha="right")
            ax.set_ylim(0, 1.05)
            ax.set_ylabel(ylabel + " [95% CI]")
            ax.set_title(title)
            ax.grid(axis="x", visible=False)
        legend_below(fig, list(handles.values()), list(handles))
    return fig


def fig_effects(results: StudyResults) -> Figure | None:
    metrics = [m for m in ("consistency", "test_accuracy") if effects(results, m)]
    if not metrics:
        return None
    margin = results.analysis.margin
    rows = max(len(effects(results, m)) for m in metrics)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10.0, len(metrics) * (0.3 * rows + 1.2) + 0.5)
        axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
        # beyond the margin: dark; excluding 0 but reaching the margin: light and dashed (the sign, not the size)
        tones = {"more": "#1e7b34", "less": "#b3261e", "about the same": "#5b6474", "inconclusive": "#c98a00",
                 MORE_UNRESOLVED: "#6fbf7f", LESS_UNRESOLVED: "#e08078"}
        marks: dict[str, object] = {}
        for ax, metric in zip(axes, metrics, strict=True):
            found = effects(results, metric)
            labels = []
            for i, e in enumerate(found):
                outcome = effect_outcome(results, e)
                h = _errorbar(ax, i, e.interval, tones[outcome], e.kind == "main",
                              dashed=outcome in (MORE_UNRESOLVED, LESS_UNRESOLVED))
                marks.setdefault(outcome, h)
                lv = [f"{f} {a}-{b}" for f, (a, b) in zip(e.factors, e.levels, strict=True)]
                labels.append(" x ".join(lv))
            ax.axvspan(-margin, margin, color="#dddddd", alpha=0.6, lw=0)
            ax.axvline(0, color="#333333", lw=0.8)
            ax.set_yticks(np.arange(len(found)), labels, fontsize=7.5)
            ax.invert_yaxis()
            ax.set_xlabel(f"effect on {metric.replace('_', ' ')} [95% CI]; grey band = margin ±{margin:g}")
            ax.set_title(f"Effects on {metric.replace('_', ' ')} (filled: main effect, open: interaction)")
            ax.grid(axis="y", visible=False)
        legend_below(fig, list(marks.values()), list(marks))
    return fig
