"""The report page: one self-contained HTML file (inline CSS, PNG figures as base64 data URIs,
no scripts, no fonts or anything else fetched from the network)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path

from .aggregate import AUGMENTED, CENTRED, Group, Stat
from .figures import FigureSpec, colour
from .verdict import THRESHOLDS, Verdict

__all__ = ["QUESTION", "render_html"]

#: The question, verbatim from the seed (``seed-question.txt``).
QUESTION = (
    "Does a fully convolutional network share the same translation invariance properties we get from networks "
    "that use max-pooling?",
    "If not, why do they perform as well as networks which use max-pooling?",
)

_CSS = """
:root { --fg: #1d2330; --muted: #5b6474; --line: #dde2ea; --zebra: #f5f7fa; --accent: #2f5d9e;
        --ok: #1e7b34; --ok-bg: #e3f4e7; --bad: #b3261e; --bad-bg: #fbe5e3; --mid: #8a5a00; --mid-bg: #fff1d0;
        --na: #5b6474; --na-bg: #eceff3; }
* { box-sizing: border-box; }
body { margin: 0; background: #fbfbfd; color: var(--fg);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 28px 60px; background: #fff; min-height: 100vh;
       box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 6px; }
h2 { font-size: 1.3rem; margin: 38px 0 12px; padding-bottom: 5px; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 26px 0 8px; }
p.sub { color: var(--muted); margin: 0 0 18px; font-size: 0.92rem; }
blockquote { margin: 0; padding: 12px 18px; border-left: 4px solid var(--accent); background: #f2f6fc;
             font-size: 1.05rem; }
blockquote p { margin: 4px 0; }
.answer { font-size: 1.02rem; padding: 4px 18px; background: #fafbf4; border: 1px solid #e6e8d4; border-radius: 6px; }
.answer p { margin: 10px 0; }
.scroll { overflow-x: auto; }
table.results { font-size: 0.83rem; }
table.results th, table.results td { padding: 6px 6px; }
table.results th { white-space: normal; vertical-align: bottom; }
table.results td.arch { white-space: nowrap; }
.sd { color: var(--muted); font-size: 0.92em; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; margin: 8px 0 14px; }
th, td { padding: 6px 9px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
th { background: #eef1f6; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--zebra); }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 0.8rem; font-weight: 700;
         white-space: nowrap; border: 1px solid transparent; }
.badge.confirmed { color: var(--ok); background: var(--ok-bg); border-color: #a8d8b4; }
.badge.refuted { color: var(--bad); background: var(--bad-bg); border-color: #eeb0aa; }
.badge.partly { color: var(--mid); background: var(--mid-bg); border-color: #ecc97a; }
.badge.not-measured { color: var(--na); background: var(--na-bg); border-color: #cfd5de; }
table.claims td:first-child { font-weight: 700; white-space: nowrap; }
table.claims td.claim { width: 31%; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: 0; }
figure { margin: 22px 0 30px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; border: 1px solid var(--line);
             border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 8px; }
figcaption b { color: var(--fg); }
figcaption a { color: var(--accent); }
dl.methods { display: grid; grid-template-columns: 210px minmax(0, 1fr); gap: 6px 16px; margin: 0; }
dl.methods dt { font-weight: 600; color: var(--muted); }
dl.methods dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
dl.methods dd pre { white-space: pre-wrap; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86rem; }
pre { background: #f4f6f9; padding: 10px 12px; border-radius: 4px; overflow-x: auto; border: 1px solid var(--line); }
details summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.82rem; border-top: 1px solid var(--line); padding-top: 10px; }
"""

_STATUS_CLASS = {"confirmed": "confirmed", "refuted": "refuted", "partly": "partly", "not measured": "not-measured"}


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pm(st: Stat, fmt: str = "{:.3f}", unit: str = "") -> str:
    if st.mean is None:
        return "–"
    out = fmt.format(st.mean) + unit
    if st.n > 1 and st.std is not None:
        out += f" <span class=\"sd\">± {fmt.format(st.std)}</span>"
    return out


def _int(st: Stat) -> str:
    if st.mean is None:
        return "–"
    out = f"{round(st.mean):,}"
    if st.n > 1 and st.std:
        out += f" <span class=\"sd\">± {st.std:,.0f}</span>"
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.2f} h"


def _claims_table(v: Verdict) -> str:
    rows = []
    for c in v.claims:
        cls = _STATUS_CLASS.get(c.status, "not-measured")
        rows.append(f"<tr><td>{_esc(c.id)}</td><td class=\"claim\">{_esc(c.text)}</td>"
                    f"<td><span class=\"badge {cls}\">{_esc(c.status)}</span></td><td>{_esc(c.evidence)}</td></tr>")
    return ("<table class=\"claims\"><thead><tr><th>#</th><th>claim</th><th>status</th><th>evidence (measured)</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _results_table(groups: dict[tuple[str, str], Group]) -> str:
    head = ("<thead><tr><th>architecture</th><th>condition</th><th>params</th>"
            "<th>centred test acc.</th><th>canvas consistency</th><th>circular consistency</th>"
            "<th>worst-case acc.</th><th>mean shifted acc.</th><th>flip rate</th><th>training time</th></tr></thead>")
    seeds = sorted({len(g.runs) for g in groups.values()})
    models = list(dict.fromkeys(m for m, _ in groups))
    rows = []
    for (m, cond), g in groups.items():
        rows.append(
            "<tr>"
            f"<td class=\"arch\"><span class=\"dot\" style=\"background:{colour(m, models)}\"></span>{_esc(m)}</td>"
            f"<td>{_esc(cond)}</td>"
            f"<td class=\"num\">{_int(g.stat('params'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('test_accuracy'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('canvas.consistency'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('circular.consistency'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('canvas.worst_case_accuracy'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('canvas.mean_accuracy'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('canvas.flip_rate'))}</td>"
            f"<td class=\"num\">{_pm(g.stat('train_seconds'), '{:.1f}', ' s')}</td>"
            "</tr>")
    note = (f"<p>Mean ± standard deviation over {' or '.join(map(str, seeds))} seeds per row. Consistency, worst-case "
            "and mean shifted accuracy and flip rate are under canvas shifts (the object moved on the canvas) unless "
            "marked circular.</p>")
    return f"{note}<div class=\"scroll\"><table class=\"results\">{head}<tbody>{''.join(rows)}</tbody></table></div>"


def _figure_html(spec: FigureSpec, png: bytes, n: int) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure id=\"fig-{_esc(spec.name)}\"><img src=\"data:image/png;base64,{data}\" "
            f"alt=\"{_esc(spec.title)}\">"
            f"<figcaption><b>Figure {n}. {_esc(spec.title)}.</b> {_esc(spec.caption)} "
            f"(<a href=\"figures/{_esc(spec.name)}.svg\">SVG</a>)</figcaption></figure>")


def _command(config: dict, run_dir: Path) -> tuple[str, str]:
    """The command that reproduces the study, and a note on where it came from."""
    for key in ("command", "argv", "cli"):
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip(), f"from config.json ({key})"
        if isinstance(value, list) and value:
            return " ".join(str(v) for v in value), f"from config.json ({key})"
    try:
        return _study_command(config, run_dir)
    except Exception:  # a config this shiftlab cannot read: list it as options
        parts = ["shiftlab study"] + [f"--{k.replace('_', '-')} {v}" for k, v in config.items()
                                      if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        return " ".join(parts), "reconstructed from config.json; check the options with `shiftlab study --help`"


def _study_command(config: dict, run_dir: Path) -> tuple[str, str]:
    """``shiftlab study`` options that give back ``config`` (a :class:`~shiftlab.study.config.StudyConfig`)."""
    from shiftlab.study.config import CONDITIONS, StudyConfig
    from shiftlab.zoo import names

    cfg = StudyConfig.from_dict(config)
    over = {"data": cfg.data, "data_root": cfg.data_root, "seeds": cfg.seeds, "epochs": cfg.epochs,
            "models": cfg.models, "conditions": cfg.conditions}
    quick = StudyConfig.quick(**over) == cfg
    args = ["shiftlab study"] + (["--quick"] if quick else []) + [f"--data {cfg.data}"]
    if cfg.data_root:
        args.append(f"--data-root {cfg.data_root}")
    args += [f"--seeds {cfg.seeds}", f"--epochs {cfg.epochs}"]
    if list(cfg.models) != names():
        args.append("--models " + ",".join(cfg.models))
    if tuple(cfg.conditions) != tuple(CONDITIONS):
        args.append("--conditions " + ",".join(cfg.conditions))
    args.append(f"--out {run_dir}")
    note = "reconstructed from config.json"
    if not quick and StudyConfig(**over) != cfg:
        base = StudyConfig(**over).to_dict()
        differ = sorted(k for k, v in cfg.to_dict().items() if base.get(k) != v)
        note += (f"; {', '.join(differ)} {'differs' if len(differ) == 1 else 'differ'} from the defaults and "
                 "cannot be set on the command line: run shiftlab.study.runner.run_study(StudyConfig.from_dict(config), "
                 "out) from Python with this config.json")
    return " ".join(args), note


def _methods(results: dict, groups: dict[tuple[str, str], Group], run_dir: Path) -> str:
    meta, config, runs = results["meta"], results["config"], results["runs"]
    seeds = sorted({r["seed"] for r in runs})
    epochs = config.get("epochs")
    if epochs is None:
        lengths = sorted({len(r.get("history") or []) for r in runs})
        epochs = ", ".join(map(str, lengths)) + " (from the training histories)"
    first = runs[0]
    canvas, circ, eq = first.get("canvas") or {}, first.get("circular") or {}, first.get("equivariance") or {}
    m = meta.get("max_shift")
    try:
        from shiftlab.zoo import describe
    except Exception:  # pragma: no cover
        describe = None
    arch = []
    for model in dict.fromkeys(mm for mm, _ in groups):
        try:
            text = describe(model) if describe else ""
        except ValueError:
            text = ""
        arch.append(f"<li><b>{_esc(model)}</b>{': ' + _esc(text) if text else ''}</li>")
    conds = []
    for cond in dict.fromkeys(c for _, c in groups):
        desc = {CENTRED: "trained on objects always centred on the canvas",
                AUGMENTED: f"trained with random translations of the object (uniform in [-{m}, {m}]²)"}.get(cond, cond)
        conds.append(f"<li><b>{_esc(cond)}</b>: {_esc(desc)}</li>")
    command, source = _command(config, run_dir)
    classes = meta.get("classes") or []
    items = [
        ("Dataset", f"{meta.get('dataset')} ({len(classes)} classes); {meta.get('n_train', '–')} training and "
                    f"{meta.get('n_test', '–')} test images; shift measurements on {meta.get('n_eval', '–')} test images"),
        ("Images", f"objects of {'x'.join(map(str, meta.get('object_size') or []))} px on a "
                   f"{'x'.join(map(str, meta.get('canvas_size') or []))} px canvas (zero background); max shift {m} px"),
        ("Canvas shifts", f"the object moved by every (dy, dx) in [-{m}, {m}]² ({len(canvas.get('shifts') or [])} shifts), "
                          "vacated pixels zero"),
        ("Circular shifts", f"torch.roll of the whole canvas; shift set {circ.get('shift_set', '–')} "
                            f"({len(circ.get('shifts') or [])} shifts)"),
        ("Consistency", "mean over images of Σ_k (n_k/|S|)², n_k = number of shifts in S classified k: exactly the "
                        "probability that two shifts drawn uniformly from S agree (Zhang 2019)"),
        ("Other metrics", "worst-case accuracy = fraction of images correct at every shift; mean shifted accuracy = "
                          "accuracy averaged over the shifts; flip rate = fraction of 1-px neighbouring shifts with "
                          "different predictions (Azulay & Weiss 2019); periodicity = agreement with the unshifted "
                          "prediction by residue of the shift modulo the total stride S"),
        ("Per-layer profile", f"{eq.get('mode', '–')} shifts, set {eq.get('shift_set', '–')}, on {eq.get('n_images', '–')} "
                              "images: relative L2 error of every layer against the shifted reference (aligned: shift a "
                              "multiple of the layer's stride; unaligned: against a band-limited fractional shift), full "
                              "map and interior (border band of the receptive-field radius masked)"),
        ("Architectures", "<ul style=\"margin:0;padding-left:18px\">" + "".join(arch) + "</ul>"),
        ("Conditions", "<ul style=\"margin:0;padding-left:18px\">" + "".join(conds) + "</ul>"),
        ("Seeds", ", ".join(map(str, seeds))),
        ("Epochs", str(epochs)),
        ("Hardware", str(meta.get("hardware", "–"))),
        ("Software", f"torch {meta.get('torch_version', '–')}, shiftlab {meta.get('shiftlab_version', '–')}"),
        ("Started", str(meta.get("started", "–"))),
        ("Time taken", _duration(meta.get("seconds"))),
        ("Reproduce", f"<pre>{_esc(command)}</pre><span style=\"color:var(--muted);font-size:0.85rem\">"
                      f"{_esc(source)}; rebuild this page from the saved results with</span>"
                      f"<pre>shiftlab report {_esc(run_dir)}</pre>"),
    ]
    raw = {"Architectures", "Conditions", "Reproduce"}
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{v if k in raw else _esc(v)}</dd>" for k, v in items)
    thresholds = "".join(f"<tr><td><code>{_esc(k)}</code></td><td class=\"num\">{v:g}</td><td>{_esc(d)}</td></tr>"
                         for k, (v, d) in THRESHOLDS.items())
    return (f"<dl class=\"methods\">{dl}</dl>"
            "<h3>Thresholds of the verdict</h3><p>Every status and sentence above is computed from the numbers with "
            "these constants (<code>shiftlab.report.verdict</code>); comparisons use the means over seeds.</p>"
            "<table><thead><tr><th>constant</th><th>value</th><th>meaning</th></tr></thead>"
            f"<tbody>{thresholds}</tbody></table>"
            "<details><summary>Full study configuration (config)</summary>"
            f"<pre>{_esc(json.dumps(config, indent=2, sort_keys=True))}</pre></details>")


def render_html(
    results: dict,
    groups: dict[tuple[str, str], Group],
    verdict: Verdict,
    figures: list[tuple[FigureSpec, bytes]],
    run_dir: Path,
) -> str:
    """The whole report page as a string."""
    meta = results["meta"]
    n_runs = len(results["runs"])
    started = meta.get("started")
    try:
        date = _dt.datetime.fromisoformat(str(started)).strftime("%Y-%m-%d") if started else ""
    except ValueError:
        date = str(started)
    sub = (f"shiftlab report · {meta.get('dataset')} · {len({m for m, _ in groups})} architectures × "
           f"{len({c for _, c in groups})} conditions · {n_runs} trained models"
           + (f" · study of {date}" if date else "") + f" · run directory <code>{_esc(run_dir.name)}</code>")
    figs = "".join(_figure_html(spec, png, i + 1) for i, (spec, png) in enumerate(figures))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shiftlab report: FCN vs max-pooling translation invariance</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>Is a fully convolutional network as translation invariant as a max-pooling network?</h1>
<p class="sub">{sub}</p>
</header>
<section id="question">
<h2>The question</h2>
<blockquote>{''.join(f'<p>{_esc(q)}</p>' for q in QUESTION)}</blockquote>
</section>
<section id="answer">
<h2>The answer</h2>
<div class="answer">{''.join(f'<p>{_esc(par)}</p>' for par in verdict.answer.split(chr(10) * 2))}</div>
</section>
<section id="claims">
<h2>The claims, tested</h2>
<p>Claims made in the answers to the question (C1–C7), each with the status the measurements give it.</p>
{_claims_table(verdict)}
</section>
<section id="evidence">
<h2>Evidence</h2>
{figs}
<h3>All results</h3>
{_results_table(groups)}
</section>
<section id="methods">
<h2>Methods</h2>
{_methods(results, groups, run_dir)}
</section>
<footer>Generated by shiftlab {_esc(meta.get('shiftlab_version', ''))} from <code>results.json</code>
(schema version {_esc(results.get('schema_version'))}); the page is self-contained.</footer>
</main>
</body>
</html>
"""
