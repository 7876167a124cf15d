"""The per-layer equivariance profile: aligned and unaligned error of every layer in execution
order, full map and interior, one panel per model (``docs/definitions.md``, "Aligned error",
"Unaligned error", "Interior error")."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from shiftlab.study.results import StudyResults

from ..evidence import models, reference_condition
from ..layers import layer_profile
from .style import STYLE, colour, legend_below, new_figure

__all__ = ["ERROR_FLOOR", "fig_layers", "short_label"]

#: Floor of the log axis: exact zeros are drawn on it.
ERROR_FLOOR = 1e-8
_ABBREV = {"Conv2d": "conv", "ReLU": "relu", "MaxPool2d": "max", "AvgPool2d": "avg", "BlurPool2d": "blur",
           "MaxBlurPool2d": "maxblur", "APSPool2d": "aps", "MaxAPSPool2d": "maxaps", "AdaptiveAvgPool2d": "GAP",
           "AdaptiveMaxPool2d": "GMP", "BatchNorm2d": "bn", "Identity": "id"}


def short_label(name: str, kind: str) -> str:
    """``features.2.blur`` + ``BlurPool2d`` -> ``2.blur blur``; ``head.1`` + ``AdaptiveAvgPool2d`` -> ``h1 GAP``.

    Example:
        >>> short_label("head.1", "AdaptiveAvgPool2d")
        'h1 GAP'
    """
    path = name[len("features."):] if name.startswith("features.") else name
    path = "h" + path[len("head."):] if path.startswith("head.") else path
    return f"{path} {_ABBREV.get(kind, kind.lower()[:7])}"


def fig_layers(results: StudyResults) -> Figure | None:
    ref = reference_condition(results)
    panels = [(m, rows) for m in models(results) if (rows := layer_profile(results, m, ref))] if ref else []
    if not panels:
        return None
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    series = (("aligned_error", "aligned (multiples of the layer's stride)", "#1a1a1a", "-", "o"),
              ("unaligned_error", "unaligned (other shifts)", "#d62728", "-", "s"),
              ("aligned_interior_error", "aligned, interior", "#1a1a1a", ":", "o"),
              ("unaligned_interior_error", "unaligned, interior", "#d62728", ":", "s"))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.7 * ncol + 0.3, 2.9 * nrow + 0.6)
        axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
        handles: dict[str, object] = {}
        for i, (m, rows) in enumerate(panels):
            ax = axes[i // ncol][i % ncol]
            x = np.arange(len(rows))
            for k, row in enumerate(rows):
                if row.downsampling:
                    ax.axvspan(k - 0.45, k + 0.45, color="#f4d35e", alpha=0.35, lw=0, zorder=0)
            for key, label, col, ls, mk in series:
                y = np.array([np.nan if getattr(r, key) is None else max(getattr(r, key), ERROR_FLOOR) for r in rows])
                if np.all(np.isnan(y)):
                    continue
                (h,) = ax.plot(x, y, color=col, ls=ls, marker=mk, ms=3, lw=1.3 if ls == "-" else 1.0,
                               mfc=col if ls == "-" else "white")
                handles.setdefault(label, h)
            ax.set_yscale("log")
            ax.set_ylim(ERROR_FLOOR / 2, 5)
            ax.set_xticks(x, [short_label(r.name, r.kind) for r in rows], rotation=90, fontsize=6.5)
            ax.set_xlim(-0.6, len(rows) - 0.4)
            ax.set_title(m, color=colour(m), fontweight="bold")
            ax.grid(axis="x", visible=False)
            if i % ncol == 0:
                ax.set_ylabel("relative L2 error")
        for j in range(len(panels), nrow * ncol):
            axes[j // ncol][j % ncol].set_axis_off()
        handles["downsampling layer"] = Patch(color="#f4d35e", alpha=0.5)
        legend_below(fig, list(handles.values()), list(handles))
    return fig
