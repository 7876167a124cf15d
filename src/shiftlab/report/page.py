"""The report page: one self-contained HTML file (inline CSS, figures as base64 PNG data URIs,
nothing fetched from the network; the only script is the shift explorer's, inline, when the runs
hold its data). Sections, in order: the question, the answer, the point-by-point verdict, the
factorial table, the effects, the figures, the shift explorer, the claims, the methods."""

from __future__ import annotations

import base64
from pathlib import Path

from shiftlab.study.config import StudyConfig
from shiftlab.study.results import StudyResults

from .explorer import explorer_css, explorer_section
from .figures import FigureSpec
from .figures.answer import ANSWER_FIGURE
from .fmt import esc, fmt_count
from .methods import methods_html
from .points import EffectsPoint
from .tables import bands_table, capacity_table, claims_table, effects_table, factorial_tables, mechanism_table, points_table
from .thresholds import ALIASING_VS_BLUR
from .verdict import Verdict

__all__ = ["QUESTION", "SECTIONS", "render_page"]

#: The question, verbatim from its source.
QUESTION = (
    "Does a fully convolutional network share the same translation invariance properties we get from networks "
    "that use max-pooling?",
    "If not, why do they perform as well as networks which use max-pooling?",
)
#: Section ids of the page, in order.
SECTIONS = ("question", "answer", "points", "cells", "capacity", "effects", "figures", "explorer", "claims", "methods")

_CSS = """
.smoke { background: #fff4d6; border-left: 4px solid #d99a00; padding: .6em .9em; }
:root { --fg: #1d2330; --muted: #5b6474; --line: #dde2ea; --zebra: #f5f7fa; --accent: #2f5d9e; }
* { box-sizing: border-box; }
body { margin: 0; background: #fbfbfd; color: var(--fg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 28px 60px; background: #fff; min-height: 100vh;
       box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 1.7rem; line-height: 1.25; margin: 0 0 6px; }
h2 { font-size: 1.3rem; margin: 38px 0 12px; padding-bottom: 5px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 24px 0 6px; }
p.sub, p.note { color: var(--muted); font-size: 0.9rem; margin: 4px 0 10px; }
blockquote { margin: 0; padding: 12px 18px; border-left: 4px solid var(--accent); background: #f2f6fc; font-size: 1.05rem; }
blockquote p { margin: 4px 0; }
.answer { padding: 4px 18px; background: #fafbf4; border: 1px solid #e6e8d4; border-radius: 6px; }
.answer p { margin: 10px 0; }
.opening { display: grid; grid-template-columns: minmax(0, 1fr) 430px; gap: 18px; align-items: start; }
.opening .answer h3 { margin: 12px 0 4px; font-size: 1rem; }
.opening .answer p { margin: 6px 0; font-size: 0.92rem; }
.opening figure { margin: 0; } .opening figcaption { font-size: 0.8rem; }
@media (max-width: 900px) { .opening { grid-template-columns: minmax(0, 1fr); } }
details.evidence { margin: 10px 0; } details.evidence summary { cursor: pointer; font-weight: 600; color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.84rem; margin: 8px 0 14px; }
th, td { padding: 5px 7px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
th { background: #eef1f6; font-weight: 600; vertical-align: bottom; }
tbody tr:nth-child(even) { background: var(--zebra); }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ci { display: block; color: var(--muted); font-size: 0.86em; }
table.cells td, table.points td { font-size: 0.8rem; }
.ok { color: #1e7b34; } .warn { color: #b3261e; font-weight: 600; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.78rem; font-weight: 700;
         white-space: nowrap; border: 1px solid #cfd5de; background: #eceff3; color: #5b6474; }
.badge.more, .badge.confirmed { color: #1e7b34; background: #e3f4e7; border-color: #a8d8b4; }
.badge.less, .badge.refuted { color: #b3261e; background: #fbe5e3; border-color: #eeb0aa; }
.badge.about-the-same { color: #2f5d9e; background: #e6eefa; border-color: #b5c9ea; }
.badge.more-size-unresolved { color: #1e7b34; background: #ffffff; border-color: #a8d8b4; border-style: dashed; }
.badge.less-size-unresolved { color: #b3261e; background: #ffffff; border-color: #eeb0aa; border-style: dashed; }
.badge.inconclusive, .badge.partly { color: #8a5a00; background: #fff1d0; border-color: #ecc97a; }
.badge.under-fits { color: #6b2f8a; background: #f3e6fa; border-color: #d3b2e6; }
td.model { white-space: nowrap; }
table.claims td:nth-child(2) { width: 27%; }
table.points td:first-child { min-width: 12em; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
figure { margin: 22px 0 30px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 8px; }
figcaption b { color: var(--fg); }
dl.methods { display: grid; grid-template-columns: 170px minmax(0, 1fr); gap: 6px 16px; margin: 0; }
dl.methods dt { font-weight: 600; color: var(--muted); }
dl.methods dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
dl.methods ul { margin: 2px 0; padding-left: 18px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.84rem; }
pre { background: #f4f6f9; padding: 8px 10px; border-radius: 4px; border: 1px solid var(--line);
      white-space: pre-wrap; overflow-wrap: anywhere; }
nav { font-size: 0.88rem; margin: 8px 0 0; } nav a { color: var(--accent); margin-right: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.82rem; border-top: 1px solid var(--line); padding-top: 10px; }
"""


def _figure(spec: FigureSpec, png: bytes, n: int) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{esc(spec.name)}"><img src="data:image/png;base64,{data}" alt="{esc(spec.title)}">'
            f"<figcaption><b>Figure {n}. {esc(spec.title)}.</b> {esc(spec.caption)} "
            f"(Also <code>figures/{esc(spec.name)}.svg</code>.)</figcaption></figure>")


def _opening(v: Verdict, figure: bytes | None) -> str:
    """Both questions answered for each FCN, beside the answer's figure (empty without an opening)."""
    if not v.opening:
        return ""
    lines = []
    for line in v.opening:
        if line[:3] in ("1. ", "2. "):
            lines.append(f"<h3>{esc(line)}</h3>")
        else:
            head, _, rest = line.partition(": ")
            lines.append(f"<p><b>{esc(head)}:</b> {esc(rest)}</p>")
    img = ""
    if figure is not None:
        data = base64.b64encode(figure).decode("ascii")
        img = (f'<figure id="fig-{ANSWER_FIGURE}" class="answer-fig"><img src="data:image/png;base64,{data}" '
               'alt="agreement with the centred prediction against distance"><figcaption>'
               'Agreement with the centred prediction against the distance '
               'moved (centred training); stars: the multiples of the total stride S (the figure "Accuracy and '
               'agreement against shift distance" below has every model).</figcaption></figure>')
    body = "".join(lines)
    return f'<div class="opening"><div class="answer">{body}</div>{img}</div>'


def _bands_block(results: StudyResults) -> str:
    table = bands_table(results)
    if not table:
        return ""
    return ("<h3>By distance</h3><p class=\"note\">Agreement with the centred prediction and accuracy in each band of "
            "shift distance max(|dy|, |dx|), mean over seeds and images with its 95% interval: a ranking by consistency "
            "depends on how far the shifts go.</p>" + table)


def _capacity_section(v: Verdict) -> str:
    table = capacity_table(v)
    if not table:
        return ""
    return ('<section id="capacity"><h2>Capacity</h2><p class="note">The key matched pairs trained and measured at '
            "several widths (channels of the first stage; centred objects, the same seeds and images): a difference "
            "that holds at every width is not an artefact of one model size.</p>" + table + "</section>")


def render_page(results: StudyResults, v: Verdict, figures: list[tuple[FigureSpec, bytes]], run_dir: Path) -> str:
    """The whole page as a string."""
    meta = results.meta
    n_models = len({c.model for c in results.analysis.cells})
    sub = (f"shiftlab report · {esc(meta.dataset)} · {n_models} models × {len(results.config.get('conditions', []))} "
           f"conditions × {results.config.get('seeds')} seeds · {len(results.runs)} trained models · study of "
           f"{esc(meta.started[:10])} · run directory <code>{esc(run_dir.name)}</code>")
    capacity = _capacity_section(v)
    sections = [s for s in SECTIONS if s != "capacity" or capacity]
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in sections)
    answer = "".join(f"<p>{esc(par)}</p>" for par in v.answer.split("\n\n"))
    top = _opening(v, dict((spec.name, png) for spec, png in figures).get(ANSWER_FIGURE))
    if top:  # the answer's figure stands beside it, not again among the figures
        figures = [(spec, png) for spec, png in figures if spec.name != ANSWER_FIGURE]
        answer = (f'<details class="evidence"><summary>The evidence, point by point ({len(v.answer.split(chr(10) * 2))} '
                  f'paragraphs): the matched pairs, the mechanism, performance, the factorial effects, transfer and the '
                  f'probe</summary><div class="answer">{answer}</div></details>')
    else:
        answer = f'<div class="answer">{answer}</div>'
    cfg = StudyConfig.from_dict(results.config)
    if cfg.stop_at_target or cfg.shift_set == "residues":
        top = ('<p class="smoke"><b>The second study design.</b> This run stopped each model at the first epoch that '
               "reached the target training accuracy (test accuracy then compares fit, not architectures at one "
               "budget), measured 97 shifts with no unaligned shift at the aligned ones' distance, and its zoo had "
               "no All-CNN FCN and no support-matched controls. The third design (a fixed budget for every model, "
               "the distance-matched aliasing signature, both FCNs) supersedes it: see docs/study.md.</p>" + top)
    if cfg.is_smoke_test:
        top = (f'<p class="smoke"><b>Smoke test, not evidence.</b> This run used the quick preset (width {cfg.width}, '
                  f"at most {fmt_count(cfg.max_epochs, 'epoch')}, {cfg.n_eval} evaluation images, "
                  f"{fmt_count(cfg.seeds, 'seed')}) to check the pipeline; its numbers do not answer the question. "
                  "Run <code>shiftlab study</code> for the answer."
                  "</p>" + top)
    effects = [p for p in v.points if isinstance(p, EffectsPoint)]
    margin = results.analysis.margin
    effects_html = "".join(f"<h3>{esc(p.metric.replace('_', ' '))}</h3>{effects_table(p, margin)}" for p in effects)
    figs = "".join(_figure(spec, png, i + 1) for i, (spec, png) in enumerate(figures))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shiftlab report: is an FCN as translation invariant as a max-pooling network?</title>
<style>{_CSS}{explorer_css()}</style>
</head>
<body>
<main>
<header>
<h1>Is a fully convolutional network as translation invariant as a max-pooling network?</h1>
<p class="sub">{sub}</p>
<nav>{nav}</nav>
</header>
<section id="question"><h2>The question</h2>
<blockquote>{''.join(f'<p>{esc(q)}</p>' for q in QUESTION)}</blockquote></section>
<section id="answer"><h2>The answer</h2>
{top}
<p class="note">Every comparison is a 95% paired bootstrap interval of a difference, read against the margin
of {margin:g}: "more" or "less" when the interval lies beyond +{margin:g} or −{margin:g}; "about the same" when it lies
inside (−{margin:g}, +{margin:g}); "more" or "less" "by an amount that may be smaller or larger than the margin"
(outcome "more, size unresolved" / "less, size unresolved") when it excludes 0 but reaches the margin; "inconclusive"
when it holds 0 and reaches the margin. A bound on the margin or on 0 is not beyond it. A model that did not reach the
target training accuracy is said to under-fit and is not compared on performance.</p>
{answer}</section>
<section id="points"><h2>Point by point</h2>
<p class="note">The matched pairs of the question: A against B in the same condition, on the same images and seeds.
Conditional consistency is consistency over the images a model classifies correctly at the centre, so accuracy is not
mistaken for invariance.</p>
{points_table(v)}
<h3>Mechanism: the networks' signature and their first downsampling layers</h3>
<p class="note">Trained on centred objects. The signature is agreement at the multiples of the total stride minus at the
other shifts, both at distance S when measured (paired per image); the layer's unaligned interior error is under
circular shifts of the evaluation canvases, and over the anti-aliased FCN's BlurPool's at the same place it labels
the layer (aliasing at ≥ {ALIASING_VS_BLUR:g}×). Ranks: 1 = most aliasing.</p>
{mechanism_table(results, v)}</section>
<section id="cells"><h2>The factorial table</h2>
<p class="note">Every cell (model × condition): parameters, multiply-adds at the canvas size, receptive field, epochs
trained (mean over seeds), final training accuracy and how many seeds reached the target, then each metric's mean
over seeds and images with its 95% interval. S is the total stride.</p>
{factorial_tables(results)}
{_bands_block(results)}</section>
{capacity}
<section id="effects"><h2>Main effects and interactions</h2>
<p class="note">Over the balanced factorial (downsampling × head × training): a main effect is the mean over the
cells at one level minus the mean at the baseline level, every combination of the other factors weighted equally;
an interaction is the difference of differences.</p>
{effects_html}</section>
<section id="figures"><h2>Figures</h2>{figs}</section>
{explorer_section(results)}
<section id="claims"><h2>The claims, tested</h2>
<p class="note">Claims made in the answers to the question, each with the status the measurements give it.</p>
{claims_table(v.claims, margin)}</section>
<section id="methods"><h2>Methods</h2>{methods_html(results, run_dir)}</section>
<footer>Generated by shiftlab {esc(meta.shiftlab_version)} from <code>results.json</code> (schema version
{results.schema_version}); the page is self-contained.</footer>
</main>
</body>
</html>
"""
