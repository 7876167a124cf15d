"""The segmentation study's report: one self-contained HTML page (inline CSS, figures as base64
PNG, no script). Sections: the question, the answer (:mod:`.verdict`), the cells, the matched
comparisons, the figure, the per-layer profile, training, claim C10, the methods."""

from __future__ import annotations

import base64

import numpy as np

from shiftlab.report.figures.style import new_figure, render
from shiftlab.report.fmt import esc, fmt, fmt_count, fmt_diff, fmt_error, fmt_interval, fmt_seconds

from .analysis import SegCell, SegResults
from .config import seg_condition
from .shift_set import SHIFT_KINDS
from .verdict import C10_TEXT, c10, logits_exact, seg_verdict

__all__ = ["render_seg_report", "seg_agreement_figure"]

_CSS = """
body { margin: 0; background: #fbfbfd; color: #1d2330; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto,
       Arial, sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 28px 60px; background: #fff; box-shadow: 0 0 0 1px #dde2ea; }
h1 { font-size: 1.7rem; margin: 0 0 6px; } h2 { font-size: 1.3rem; margin: 34px 0 10px; border-bottom: 2px solid #dde2ea; }
p.note { color: #5b6474; font-size: .9rem; } .answer { padding: 4px 18px; background: #fafbf4; border: 1px solid #e6e8d4; }
table { border-collapse: collapse; font-size: .86rem; margin: 8px 0 14px; }
th, td { border-bottom: 1px solid #dde2ea; padding: 4px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td.l, th.l { text-align: left; } tr:nth-child(even) td { background: #f5f7fa; }
.wide { overflow-x: auto; } h3 { font-size: 1.05rem; margin: 18px 0 4px; }
.smoke { background: #fff4d6; border-left: 4px solid #d99a00; padding: .6em .9em; } img { max-width: 100%; }
"""
_KIND_LABEL = {"near": "near (1-S/2 px)", "aligned": "aligned at S", "unaligned": "unaligned at S"}
#: The comparisons' metrics as the tables name them (the analysis's ids: ``object_`` over object pixels).
_METRIC_LABEL = {"massc": "mASSC", "object_massc": "object agreement",
                 "object_gap": "object agreement, aligned - unaligned at S", "miou": "mIoU"}
_KIND_COLOUR = {"near": "#2f5d9e", "aligned": "#2a9d5c", "unaligned": "#c8553d"}


def seg_agreement_figure(results: SegResults) -> bytes:
    """PNG: per condition, each U-Net's mean object agreement (ASSC over the pixels either
    prediction labels an object) at the near, aligned and unaligned shifts, with 95% intervals."""
    conditions = results.config.conditions
    models = results.config.models
    fig = new_figure(3.6 * len(conditions) + 0.6, 3.8)
    axes = fig.subplots(1, len(conditions), sharey=True, squeeze=False)[0]
    x = np.arange(len(models))
    for ax, cond in zip(axes, conditions, strict=True):
        for j, kind in enumerate(SHIFT_KINDS):
            cells = [results.cell(m, cond) for m in models]
            est = np.array([c.agreement[f"object_{kind}"].estimate if c else np.nan for c in cells])
            low = np.array([c.agreement[f"object_{kind}"].low if c else np.nan for c in cells])
            high = np.array([c.agreement[f"object_{kind}"].high if c else np.nan for c in cells])
            ax.errorbar(x + (j - 1) * 0.22, est, yerr=[est - low, high - est], fmt="o", ms=4, capsize=2,
                        color=_KIND_COLOUR[kind], label=_KIND_LABEL[kind] if ax is axes[0] else None)
        ax.set_title(cond, fontsize=10)
        ax.set_xticks(x, [m.removeprefix("unet_") for m in models], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(top=1.005)
        ax.grid(axis="y", alpha=.3)
    axes[0].set_ylabel("object agreement")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    return render(fig)[0]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _models_table(results: SegResults) -> str:
    seen: dict[str, SegCell] = {}
    for c in results.cells:
        seen.setdefault(c.model, c)
    rows = "".join(f"<tr><td>{esc(m)}</td><td>{c.params:,}</td><td>{c.macs / 1e6:.1f}</td><td>{c.receptive_field}</td></tr>"
                   for m, c in seen.items())
    return ("<table><tr><th>U-Net</th><th>parameters</th><th>multiply-adds (M, one 64x64 scene)</th>"
            f"<th>receptive field of one logit (px)</th></tr>{rows}</table>")


def _cells_table(results: SegResults, condition: str) -> str:
    head = ("<tr><th>U-Net</th><th>mASSC</th><th>object agreement</th><th>near</th><th>aligned at S</th>"
            "<th>unaligned at S</th><th>aligned - unaligned</th><th>exact</th><th>EQ-T unal. (dB)</th><th>mIoU</th>"
            "<th>mIoU shifted</th></tr>")
    rows = []
    for c in (c for c in results.cells if c.condition == condition):
        a = c.agreement
        eqt = c.eq_t_db["unaligned"]
        rows.append(
            f"<tr><td>{esc(c.model.removeprefix('unet_'))}</td><td>{fmt_interval(a['massc'])}</td>"
            f"<td>{fmt_interval(a['object_massc'])}</td><td>{fmt_interval(a['object_near'])}</td>"
            f"<td>{fmt_interval(a['object_aligned'])}</td><td>{fmt_interval(a['object_unaligned'])}</td>"
            f"<td>{fmt_diff(a['object_gap'], margin=results.config.margin, short=True)}</td>"
            f"<td>{'yes' if c.exact else 'no'}</td><td>{'inf' if eqt is None else f'{eqt:.1f}'}</td>"
            f"<td>{fmt_interval(c.miou)}</td><td>{fmt_interval(c.miou_shifted)}</td></tr>")
    return f"<h3>{esc(condition)}</h3><div class=wide><table>{head}{''.join(rows)}</table></div>"


def _cells_section(results: SegResults) -> str:
    note = ("<p class=note>mASSC: agreement over every valid pixel (background included); object agreement and the "
            "columns after it: over the pixels either prediction labels an object; near, aligned and unaligned: at the "
            "shifts of that kind (S = total stride). Intervals: 95%.</p>")
    return _models_table(results) + note + "".join(_cells_table(results, c) for c in results.config.conditions)


def _comparisons_table(results: SegResults) -> str:
    rows = [f"<tr><td class=l>{esc(cond)}</td><td class=l>{esc(c.label)}</td><td class=l>{esc(c.a)} - {esc(c.b)}</td>"
            f"<td class=l>{esc(_METRIC_LABEL.get(c.metric, c.metric))}</td><td>{fmt_diff(c.interval, margin=c.margin)}</td>"
            f"<td class=l>{esc(c.outcome)}</td></tr>"
            for cond, c in results.comparisons]
    return ("<table><tr><th class=l>condition</th><th class=l>what differs</th><th class=l>a - b</th><th class=l>metric</th>"
            f"<th>difference</th><th class=l>decision</th></tr>{''.join(rows)}</table>")


def _layers_table(results: SegResults) -> str:
    blocks = []
    for record in results.runs:
        if not record.layers or record.condition != results.config.conditions[-1]:
            continue
        parts: dict[str, list[dict]] = {}
        for layer in record.layers:
            parts.setdefault(layer["part"], []).append(layer)
        said = "<br>departs at {} (undone: logits exact)" if logits_exact(record.layers) else "<br>breaks at {}"
        cells = []
        for part, layers in parts.items():
            worst_a = max((v for la in layers if (v := la["aligned_error"]) is not None), default=None)
            worst_u = max((v for la in layers if (v := la["unaligned_error"]) is not None), default=None)
            breaks = [la["name"] for la in layers if la["origin"].startswith("breaks here")]
            cells.append(f"<td class=l>{esc(part)}: {fmt_error(worst_a)} / {fmt_error(worst_u)}"
                         f"{said.format(esc(', '.join(breaks))) if breaks else ''}</td>")
        blocks.append(f"<tr><td>{esc(record.model)}</td>{''.join(cells)}</tr>")
    return f"<table>{''.join(blocks)}</table>"


def _training_table(results: SegResults) -> str:
    seeds = results.config.seeds
    rows = "".join(f"<tr><td>{esc(c.model)}</td><td class=l>{esc(c.condition)}</td><td>{c.train_loss:.4f}</td>"
                   f"<td>{fmt(c.train_acc, 4)}</td><td>{c.trained} of {seeds}"
                   f"{'' if c.trained == seeds else ' (under-fitted)'}</td></tr>" for c in results.cells)
    return (f"<p class=note>A run counts as trained when its last epoch's training pixel accuracy reaches "
            f"{results.config.target_accuracy} (background included).</p><table><tr><th>U-Net</th><th class=l>condition</th>"
            "<th>last-epoch training loss</th><th>last-epoch training pixel accuracy</th><th>trained to the target</th>"
            f"</tr>{rows}</table>")


def _loss_figure(results: SegResults) -> bytes:
    fig = new_figure(7.5, 3.2)
    ax = fig.subplots()
    for record in results.runs:
        if record.seed == 0 and record.condition == results.config.conditions[0]:
            ax.plot([h["epoch"] for h in record.history], [h["train_loss"] for h in record.history],
                    marker="o", markersize=2.5, label=record.model.removeprefix("unet_"))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (seed 0)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=3, frameon=False)
    return render(fig)[0]


def _methods(results: SegResults) -> str:
    cfg = results.config
    seconds = sum(r.seconds for r in results.runs)
    conds = "".join(f"<li><b>{esc(c)}</b>: {esc(seg_condition(c).description)}</li>" for c in cfg.conditions)
    return (f"<p>Scenes: 2-3 {esc(cfg.data)} objects on {cfg.canvas}x{cfg.canvas} canvases, every object at least "
            f"{cfg.max_shift} px from the border (no object leaves the canvas under a measured shift); {cfg.n_train} "
            f"training scenes from the source's training split, {cfg.n_test} test scenes from its test split; "
            f"{len(results.classes)} classes (background included). U-Nets of width {cfg.width}, {cfg.levels} levels "
            f"(total stride S = {cfg.stride}); AdamW, lr {cfg.lr}, cosine schedule, batch {cfg.batch_size}, "
            f"{fmt_count(cfg.epochs, 'epoch')} for every run; {fmt_count(cfg.seeds, 'seed')}.</p><ul>{conds}</ul>"
            "<p>Agreement (ASSC) at a shift d: the share of valid pixels whose class in f(T_d x) is that of T_d f(x) "
            "(zero fill: pixels whose source lies on the canvas; circular: all). mASSC: its mean over the non-zero shifts. "
            "Intervals: 95% paired two-way bootstrap over seeds and test scenes "
            f"({cfg.n_boot} replicates; mIoU as a ratio of summed counts); decisions against the margin {cfg.margin}. "
            f"Per-layer profile: seed 0, {cfg.n_profile} test scenes, errors aligned / unaligned (relative L2; at layers of "
            "stride > 1 the unaligned reference is the band-limited fractional shift, which an APS layer's integer "
            f"shift of another phase does not match even where the output is exact). Run time: {fmt_seconds(seconds)} "
            "of worker time.</p>")


def render_seg_report(results: SegResults) -> str:
    """The report page of ``results`` (module notes)."""
    verdict = seg_verdict(results)
    claim = c10(results)
    smoke = ('<p class="smoke">This is the quick preset: a check of the pipeline on a tiny budget, not evidence.</p>'
             if results.config.is_smoke_test else "")
    where = "".join(f"<li>{esc(line)}</li>" for line in verdict.where)
    restores = "".join(f"<li>{esc(line)}</li>" for line in verdict.restores)
    claim_rows = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in claim.outcomes.items())
    return (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>shiftlab: is a segmentation FCN shift "
        f"equivariant?</title><style>{_CSS}</style></head><body><main>"
        "<h1>Is a fully convolutional segmentation network shift equivariant?</h1>"
        f"{smoke}<section id=question><h2>The question</h2><p>{esc(C10_TEXT)} Does a U-Net's mask move with its "
        "input, at which shifts, which part breaks it, and what restores it at what cost in mIoU?</p></section>"
        f"<section id=answer><h2>The answer</h2><div class=answer><p>{esc(verdict.equivariant)}</p>"
        f"<p>Where it breaks (matched pairs, object agreement):</p><ul>{where}</ul><p>What restores it:</p><ul>{restores}</ul>"
        f"</div></section><section id=cells><h2>Every U-Net</h2>{_cells_section(results)}</section>"
        f"<section id=figures><h2>Agreement by shift</h2>{_img(seg_agreement_figure(results), 'agreement by shift kind')}"
        f"</section><section id=comparisons><h2>Matched comparisons</h2><div class=wide>{_comparisons_table(results)}</div>"
        "</section>"
        f"<section id=layers><h2>Per layer ({esc(results.config.conditions[-1])}, seed 0)</h2><p class=note>Per part: "
        f"the largest relative error at aligned / unaligned shifts, and the layers where error is added (where the "
        "logits are exact, the layers whose maps depart from a band-limited shift and later layers undo it).</p>"
        f"{_layers_table(results)}</section>"
        f"<section id=training><h2>Training</h2>{_img(_loss_figure(results), 'training loss')}{_training_table(results)}"
        f"</section><section id=claims><h2>Claim C10: {esc(claim.status)}</h2><p>{esc(C10_TEXT)}</p>"
        f"<ul>{claim_rows}</ul><p class=note>{esc('; '.join(claim.notes))}</p></section>"
        f"<section id=methods><h2>Methods</h2>{_methods(results)}</section></main></body></html>")
