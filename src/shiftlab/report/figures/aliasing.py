"""The aliasing signature: agreement with the unshifted prediction against the horizontal shift
dx (dy = 0), and by dx modulo the total stride S (``docs/definitions.md``, "Aligned and
unaligned agreement"). A network invariant at multiples of S peaks on the dashed lines."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from ..evidence import models, reference_condition
from .style import STYLE, colour, condition_label, integer_ticks, legend_below, linestyle, new_figure

__all__ = ["fig_aliasing"]


def fig_aliasing(results: StudyResults) -> Figure | None:
    ref = reference_condition(results)
    if ref is None:
        return None
    series = {}
    for m in models(results):
        found = [r.periodicity for r in results.main_runs
                 if r.model == m and r.condition == ref and r.periodicity is not None]
        if found:
            p = found[0]
            by_dx = np.mean([q.agreement_by_dx for q in found], axis=0)
            residue = np.array([[np.nan if v is None else v for v in q.residue_agreement[0]] for q in found])
            series[m] = (np.asarray(p.dx_values), by_dx, np.nanmean(residue, axis=0), p.stride)
    if not series:
        return None
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.0, 4.2)
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        handles, labels = [], []
        strides = sorted({s for *_, s in series.values()})
        for m, (dx, by_dx, residue, s) in series.items():
            (h,) = left.plot(dx, by_dx, marker="o", ms=3.5, lw=1.6, ls=linestyle(m), color=colour(m))
            right.plot(np.arange(s), residue, marker="o", ms=4, lw=1.6, ls=linestyle(m), color=colour(m))
            handles.append(h)
            labels.append(m)
        lo = min(float(v[0].min()) for v in series.values())
        hi = max(float(v[0].max()) for v in series.values())
        for s in strides:
            for k in range(int(np.ceil(lo / s)), int(np.floor(hi / s)) + 1):
                line = left.axvline(k * s, color="#444444", ls=(0, (4, 3)), lw=1.0, alpha=0.7, zorder=1)
            right.axvline(0, color="#444444", ls=(0, (4, 3)), lw=1.0, alpha=0.7, zorder=1)
        handles.append(line)
        labels.append("multiple of S")
        left.set_xlabel("horizontal shift dx [px] (dy = 0)")
        left.set_ylabel("agreement with the unshifted prediction")
        left.set_title(f"Agreement against the shift ({condition_label(ref)}, S = {', '.join(map(str, strides))})")
        right.set_xlabel("dx mod S (dy a multiple of S; 0 = the non-zero multiples)")
        right.set_title("Agreement by residue of the shift modulo S")
        right.set_xticks(np.arange(max(strides)))
        integer_ticks(left.xaxis)
        for ax in (left, right):
            ax.set_ylim(-0.02, 1.03)
        legend_below(fig, handles, labels)
    return fig
