"""The report's tables as HTML: the point-by-point verdict, the factorial table (every cell with
its intervals), the factorial effects, the claims (``docs/study.md``, "Report")."""

from __future__ import annotations

import re

from shiftlab.stats import Comparison, Interval
from shiftlab.study.analysis import CellStats
from shiftlab.study.conditions import CONDITIONS
from shiftlab.study.measurements import DISTANCE_BANDS
from shiftlab.study.results import StudyResults

from . import prose
from .claims import CLAIMS, ClaimResult
from .claims.c7_sources import UNDER_FITS
from .evidence import cells
from .figures import colour
from .fmt import esc, fmt, fmt_diff, fmt_error, fmt_int
from .points import CapacityPoint, EffectsPoint, MechanismPoint, PairPoint, PerformancePoint
from .thresholds import EXACT_ERROR_TOL
from .verdict import Verdict

__all__ = ["bands_table", "capacity_table", "claims_table", "effects_table", "factorial_tables", "mechanism_table",
           "points_table"]


def _badge(outcome: str) -> str:
    """The outcome as a badge; its class is the outcome's words joined by hyphens
    ("more, size unresolved" -> ``more-size-unresolved``)."""
    return f'<span class="badge {"-".join(re.findall(r"[a-z0-9]+", outcome.lower()))}">{esc(outcome)}</span>'


def _iv(iv: Interval | None, digits: int = 3) -> str:
    """``0.312 [0.29, 0.33]``, the interval on its own line."""
    if iv is None:
        return "–"
    d = max(digits - 1, 1)
    return f'{iv.estimate:.{digits}f} <span class="ci">[{iv.low:.{d}f}, {iv.high:.{d}f}]</span>'


def _model(model: str) -> str:
    return f'<span class="dot" style="background:{colour(model)}"></span>{esc(model)}'


def points_table(v: Verdict) -> str:
    """Every matched pair of the verdict: invariance (consistency, conditional consistency) and
    performance (test accuracy), with the difference's interval and the outcome."""
    rows = []
    for p in v.points:
        if isinstance(p, PairPoint):
            for label, c, metric in (("consistency", p.consistency, "consistency"),
                                     ("conditional consistency", p.conditional, "consistency_correct")):
                rows.append(_pair_row(p.pair.question, p.pair.a, p.pair.b, p.condition, label, p.a, p.b, metric,
                                      c, c.outcome if c else "not measured"))
        elif isinstance(p, PerformancePoint):
            rows.append(_pair_row(p.pair.question, p.pair.a, p.pair.b, p.condition, "test accuracy", p.a, p.b,
                                  "test_accuracy", p.accuracy, p.outcome,
                                  ", ".join(p.under_fitting)))
    head = ("<thead><tr><th>question</th><th>A</th><th>B</th><th>condition</th><th>metric</th><th>A</th><th>B</th>"
            "<th>A − B [95% CI]</th><th>outcome</th></tr></thead>")
    return f'<div class="scroll"><table class="points">{head}<tbody>{"".join(rows)}</tbody></table></div>'


def mechanism_table(results: StudyResults, v: Verdict) -> str:
    """Each model's distance-matched aliasing signature (the network) beside its first downsampling
    layer's unaligned interior error and that error over the anti-aliased FCN's BlurPool's (the
    layer), each with its rank, so a layer ranking that runs against the networks' is visible."""
    points = [p for p in v.points if isinstance(p, MechanismPoint)]
    if not points:
        return ""
    by_gap = sorted(points, key=lambda p: -(p.gap.estimate if p.gap is not None else float("-inf")))
    by_layer = sorted(points, key=lambda p: -(p.unaligned_interior_error or 0.0))
    rows = []
    for p in by_gap:
        cell = results.analysis.cell(p.model, p.condition)
        ratio = (p.unaligned_interior_error / max(p.reference_unaligned_interior_error, EXACT_ERROR_TOL)
                 if p.unaligned_interior_error is not None and p.reference_unaligned_interior_error is not None else None)
        rows.append(f'<tr><td class="model">{_model(p.model)}</td>'
                    f'<td class="num">{_iv(cell.metrics.get("consistency")) if cell else "–"}</td>'
                    f'<td class="num">{esc(fmt_diff(p.gap)) if p.gap is not None else "–"}</td><td>{_badge(p.signature)}</td>'
                    f'<td class="num">{by_gap.index(p) + 1}</td><td><code>{esc(p.layer or "–")}</code></td>'
                    f'<td class="num">{esc(fmt_error(p.unaligned_interior_error))}</td>'
                    f'<td class="num">{"–" if ratio is None else f"{ratio:.2f}"}</td>'
                    f'<td class="num">{by_layer.index(p) + 1}</td><td>{esc(p.outcome)}</td></tr>')
    head = ("<thead><tr><th>model</th><th>consistency</th><th>signature: aligned − unaligned agreement [95% CI]</th>"
            "<th>reading</th><th>network rank</th><th>first downsampling layer</th><th>its unaligned interior error</th>"
            "<th>over the BlurPool's</th><th>layer rank</th><th>layer label</th></tr></thead>")
    return f'<div class="scroll"><table class="points">{head}<tbody>{"".join(rows)}</tbody></table></div>'


def bands_table(results: StudyResults) -> str:
    """Agreement with the centred prediction and accuracy in each distance band
    (:data:`shiftlab.study.measurements.DISTANCE_BANDS`), per cell, with 95% intervals; empty when
    the cells lack them (results of the second design)."""
    cells_ = [c for c in results.analysis.cells if any(k.startswith("agreement_d") for k in c.metrics)]
    if not cells_:
        return ""
    head = "".join(f"<th>{esc(b.label)}</th>" for b in DISTANCE_BANDS)
    rows = []
    for c in cells_:
        for metric in ("agreement", "accuracy"):
            values = "".join(f'<td class="num">{_iv(c.metrics.get(f"{metric}_{b.name}"))}</td>' for b in DISTANCE_BANDS)
            rows.append(f'<tr><td class="model">{_model(c.model)}</td><td>{esc(c.condition)}</td><td>{metric}</td>{values}</tr>')
    return (f'<div class="scroll"><table class="cells"><thead><tr><th>model</th><th>condition</th><th>metric</th>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _pair_row(question: str, a: str, b: str, condition: str, label: str, ca: CellStats | None, cb: CellStats | None,
              metric: str, diff: Comparison | None, outcome: str, note: str = "") -> str:
    va = _iv(ca.metrics.get(metric)) if ca is not None else "–"
    vb = _iv(cb.metrics.get(metric)) if cb is not None else "–"
    d = esc(fmt_diff(diff.interval, margin=diff.margin)) if diff is not None else "–"
    extra = f'<br><span class="ci">{esc(note)} under-fits</span>' if outcome == UNDER_FITS and note else ""
    return (f'<tr><td>{esc(question)}</td><td class="model">{_model(a)}</td><td class="model">{_model(b)}</td>'
            f"<td>{esc(condition)}</td>"
            f'<td>{esc(label)}</td><td class="num">{va}</td><td class="num">{vb}</td><td class="num">{d}</td>'
            f"<td>{_badge(outcome)}{extra}</td></tr>")


def capacity_table(v: Verdict) -> str:
    """The capacity sweep: each matched pair at every width, with parameters, consistency and test
    accuracy of both models and the differences' intervals; empty without a sweep."""
    rows = []
    for p in v.points:
        if not isinstance(p, CapacityPoint):
            continue
        for r in p.rows:
            size = f"{fmt_int(r.a.params)} / {fmt_int(r.b.params)}" if r.a and r.b else "–"
            note = ", ".join(c.model for c in (r.a, r.b) if c is not None and c.all_converged is False)
            for label, c, metric, outcome in (("consistency", r.consistency, "consistency",
                                               r.consistency.outcome if r.consistency else "not measured"),
                                              ("test accuracy", r.accuracy, "test_accuracy", r.performance)):
                rows.append(_pair_row(p.pair.question, p.pair.a, p.pair.b, f"width {r.width} ({size} params)", label,
                                      r.a, r.b, metric, c, outcome, note))
    if not rows:
        return ""
    head = ("<thead><tr><th>question</th><th>A</th><th>B</th><th>width (params A / B)</th><th>metric</th><th>A</th>"
            "<th>B</th><th>A − B [95% CI]</th><th>outcome</th></tr></thead>")
    return f'<div class="scroll"><table class="points">{head}<tbody>{"".join(rows)}</tbody></table></div>'


_COLUMNS = (("consistency", "consistency"), ("consistency_correct", "conditional consistency"),
            ("test_accuracy", "test accuracy"), ("aligned", "agreement at multiples of S"),
            ("unaligned", "agreement at other shifts"), ("flip_rate", "flip rate"))
_PROBE_COLUMNS = (("probe_accuracy", "probe accuracy"), ("test_accuracy", "test accuracy"))


def _training(cell: CellStats) -> str:
    flag = ("–" if cell.converged is None else
            f'<span class="{"ok" if cell.all_converged else "warn"}">{cell.converged}/{cell.n_seeds} converged</span>')
    return f'{fmt(cell.final_train_accuracy)}<br><span class="ci">{flag}</span>'


def factorial_tables(results: StudyResults) -> str:
    """One table per condition, a row per cell: size, training, and every metric with its interval."""
    out = []
    for cond in CONDITIONS:
        rows = cells(results, cond)
        if not rows:
            continue
        cols = _PROBE_COLUMNS if cond.startswith("probe") else _COLUMNS
        head = ("<thead><tr><th>model</th><th>params</th><th>MACs</th>"
                "<th>RF [px]</th><th>epochs</th><th>training accuracy</th>"
                + "".join(f"<th>{esc(label)}</th>" for _, label in cols) + "</tr></thead>")
        body = "".join(
            f'<tr><td class="model">{_model(c.model)}</td>'
            f'<td class="num">{fmt_int(c.params)}</td><td class="num">{fmt_int(c.macs)}</td>'
            f'<td class="num">{c.receptive_field}</td><td class="num">{c.epochs:g}</td>'
            f'<td class="num">{_training(c)}</td>'
            + "".join(f'<td class="num">{_iv(c.metrics.get(k))}</td>' for k, _ in cols) + "</tr>"
            for c in rows)
        seeds = sorted({c.n_seeds for c in rows})
        out.append(f'<h3 id="cells-{esc(cond)}">{esc(cond)}</h3><p class="note">{esc(_describe(cond))} '
                   f"{'/'.join(map(str, seeds))} seeds per cell; mean [95% CI] over seeds and images.</p>"
                   f'<div class="scroll"><table class="cells">{head}<tbody>{body}</tbody></table></div>')
    return "".join(out)


def _describe(cond: str) -> str:
    from shiftlab.study.conditions import condition

    return condition(cond).description[:1].upper() + condition(cond).description[1:] + "."


def effects_table(p: EffectsPoint, margin: float) -> str:
    """The factorial effects of ``p``, each with its interval and its decision against ``margin``."""
    if not p.effects:
        return ('<p class="note">Not measured: the cells of this run do not form a balanced design '
                "(every downsampling × every head × centred and augmented).</p>")
    rows = "".join(
        f"<tr><td>{esc(e.kind)}</td>"
        f"<td>{esc(' × '.join(f'{f}: {a} vs {b}' for f, (a, b) in zip(e.factors, e.levels, strict=True)))}"
        f'</td><td class="num">{esc(fmt_diff(e.interval, margin=margin))}</td><td>{_badge(o)}</td></tr>' for e, o in p.effects)
    return ("<table><thead><tr><th>effect</th><th>levels</th><th>estimate [95% CI]</th><th>outcome</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def claims_table(results: list[ClaimResult], margin: float) -> str:
    """Every claim: its text, what it expects, its measured status and evidence (differences
    decided against ``margin``)."""
    by_id = {r.id: r for r in results}
    rows = "".join(
        f"<tr><td>{esc(c.id)}</td><td>{esc(c.text)}<br><span class=\"ci\">expected: {esc(c.expected)}</span></td>"
        f"<td>{_badge(by_id[c.id].status)}</td><td>{esc(prose.claim_text(by_id[c.id], margin))}</td></tr>"
        for c in CLAIMS if c.id in by_id)
    return ('<table class="claims"><thead><tr><th>#</th><th>claim</th><th>status</th><th>evidence (measured)</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")
