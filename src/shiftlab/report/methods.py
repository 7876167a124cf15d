"""The report's methods section: everything needed to redo the study by hand (``docs/study.md``),
read from the saved config and provenance."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from shiftlab.study.analysis import BOOT_SEED
from shiftlab.study.conditions import condition
from shiftlab.study.config import PRESETS, StudyConfig
from shiftlab.study.measurements import study_shifts
from shiftlab.study.results import StudyResults
from shiftlab.zoo import spec

from .evidence import models
from .fmt import esc, fmt_count, fmt_seconds
from .thresholds import THRESHOLDS

__all__ = ["methods_html", "study_command"]

#: Config fields ``shiftlab study`` takes as options (the rest come from the preset).
_OPTIONS = ("data", "data_root", "models", "conditions", "seeds", "width", "capacity_widths", "max_epochs",
            "target_accuracy", "n_eval", "n_train", "n_test", "schedule", "stop_at_target", "param_matched", "lr",
            "shift_set")


def _option(key: str, value: object) -> str:
    """``--key value`` as ``shiftlab study`` parses it (tuples comma-separated, an empty sweep ``none``,
    a switched-on flag alone)."""
    if value is True:
        return f"--{key.replace('_', '-')}"
    if isinstance(value, tuple):
        value = ",".join(map(str, value)) or "none"
    return f"--{key.replace('_', '-')} {shlex.quote(str(value))}"


def study_command(config: dict, out: str) -> tuple[str, str]:
    """The shortest ``shiftlab study`` command that gives back ``config``, and a note when no command
    can (naming the fields no option sets, against the closest preset).

    Example:
        >>> study_command(StudyConfig.preset("quick").to_dict(), "runs/q")[0]
        'shiftlab study --preset quick --out runs/q'
    """
    cfg = StudyConfig.from_dict(config)
    given = {k: getattr(cfg, k) for k in _OPTIONS}
    fields = cfg.to_dict()
    differ: dict[str, list[str]] = {}
    commands = []
    for preset in PRESETS:
        rest = StudyConfig.preset(preset, **given).to_dict()
        differ[preset] = sorted(k for k, v in fields.items() if rest[k] != v)
        if not differ[preset]:
            base = StudyConfig.preset(preset)
            args = ["shiftlab study"] + ([f"--preset {preset}"] if preset != "default" else [])
            args += [_option(k, getattr(cfg, k)) for k in _OPTIONS if getattr(cfg, k) != getattr(base, k)]
            commands.append(" ".join(args + [f"--out {shlex.quote(out)}"]))
    if commands:
        return min(commands, key=len), ""
    closest = min(differ.values(), key=len)
    return (f"python -c \"from shiftlab.study.config import StudyConfig; from shiftlab.study.runner import run_study; "
            f"import json; run_study(StudyConfig.from_dict(json.load(open('config.json'))), '{out}')\"",
            f"{', '.join(closest)} cannot be set on the command line; run it from Python with this config")


def _shift_set(results: StudyResults) -> str:
    cfg, meta = results.config, results.meta
    shift_set = StudyConfig.from_dict(cfg).shift_set
    strides = sorted({r.total_stride for r in results.main_runs})
    parts = []
    for s in strides:
        try:
            n = str(len(study_shifts(s, meta.max_shift, cfg["augment_range"], shift_set)))
        except ValueError as err:
            n = f"n/a ({err})"
        c = max(s // 2, cfg["augment_range"])
        if shift_set == "matched":
            parts.append(f"total stride S = {s}: every (dy, dx) in [-{c}, {c}]² (every residue modulo S and every unit "
                         f"step), the axis shifts (0, ±d), (±d, 0) for d = {c + 2} … {meta.max_shift}, the diagonals "
                         f"(±S, ±S), and on the ring at distance S the unaligned shifts (±S, ±S/2), (±S/2, ±S), (±S, ±1), "
                         f"(±1, ±S), at the distance of the aligned ones: {n} shifts")
        else:
            parts.append(f"total stride S = {s}: every (dy, dx) in [-{c}, {c}]² (every residue modulo S and every unit "
                         f"step), the axis shifts (0, ±d), (±d, 0) for d = {c + 2}, {c + 4}, … and every multiple of S up "
                         f"to {meta.max_shift}, and the diagonals (±S, ±S): {n} shifts")
    return "; ".join(parts) + ". The object moves on the canvas; vacated pixels are zero."


def _training(cfg: StudyConfig) -> str:
    """How every model was trained: a fixed budget under a schedule, or stopped at the target."""
    if cfg.stop_at_target:
        return (f"AdamW, {cfg.schedule} learning rate {cfg.lr}, batch size {cfg.batch_size}; at most "
                f"{fmt_count(cfg.max_epochs, 'epoch')}, stopping at the end of the first epoch whose training "
                f"accuracy reaches the target {cfg.target_accuracy}; a run that never reaches it is flagged 'not "
                "converged' and not compared on performance.")
    rate = (f"a cosine learning rate from {cfg.lr} down to 0 over the budget" if cfg.schedule == "cosine"
            else f"a constant learning rate {cfg.lr}")
    return (f"AdamW, {rate}, batch size {cfg.batch_size}; every model trains the same budget of "
            f"{fmt_count(cfg.max_epochs, 'epoch')}; a run whose training accuracy in its last epoch is below the "
            f"target {cfg.target_accuracy} is flagged 'not converged' and not compared on performance.")


def methods_html(results: StudyResults, run_dir: Path) -> str:
    cfg, meta = results.config, results.meta
    study = StudyConfig.from_dict(cfg)
    a = results.analysis
    command, note = study_command(cfg, str(run_dir))
    arch = "".join(f"<li><b>{esc(m)}</b>: {esc(spec(m).description)}</li>" for m in models(results))
    conds = "".join(f"<li><b>{esc(c)}</b>: {esc(condition(c).description)}</li>" for c in cfg.get("conditions", []))
    items = [
        ("Dataset", f"{meta.dataset}: {len(meta.classes)} classes; {meta.n_train} training and {meta.n_test} test images "
                    f"(class-balanced caps); {meta.n_eval} test images measured under shifts, the same for every model"),
        ("Canvas", f"objects of {'×'.join(map(str, meta.object_size))} px (content at most "
                   f"{'×'.join(map(str, meta.object_extent))} px) centred on a {'×'.join(map(str, meta.canvas_size))} px "
                   f"zero canvas; shifts up to {meta.max_shift} px keep the content on the canvas"),
        ("Shift set", _shift_set(results)),
        ("Models", f"width {esc(cfg.get('width'))} (channels w, 2w, 4w), padding {esc(cfg.get('padding'))}; each stage conv3x3 - "
                   f"BatchNorm - ReLU [- pool], total stride 8:<ul>{arch}</ul>"),
        ("Conditions", f"<ul>{conds}</ul>augmentation range R = {esc(cfg.get('augment_range'))} px; probe offset ±"
                       f"{esc(cfg.get('probe_offset'))} px"),
        ("Training", _training(study) + " The position probe trains a fixed "
                     f"{fmt_count(study.probe_epochs, 'epoch')} (no target). Transfer: the trunk trains on the "
                     "first half of the classes, then is frozen and a new head trains on the other half (centred) "
                     "to the same target."),
        ("Seeds", f"{cfg.get('seeds')} per model and condition (the seed sets the weight initialisation and the batch order)"),
        ("Per-layer profile", f"circular shifts of {cfg.get('n_profile')} evaluation canvases: relative L2 error of "
                              "every layer against the shifted reference, aligned (shift a multiple of the layer's "
                              "stride) and unaligned (against a band-limited fractional shift), full map and interior"),
        ("Statistics", f"per cell, metric means over seeds and images with 95% intervals from a paired two-way "
                       f"bootstrap ({a.n_boot} replicates from a random generator seeded with {BOOT_SEED}, so the intervals "
                       f"are reproducible): each replicate resamples seeds and images "
                       f"once for every cell, so differences and factorial effects are paired. A difference is 'more' "
                       f"when its interval lies above +{a.margin:g} (the margin), 'less' below −{a.margin:g}, 'about the "
                       f"same' inside (−{a.margin:g}, +{a.margin:g}) (equivalence, as in a TOST, even when it excludes 0); "
                       f"an interval that excludes 0 but reaches the margin is 'more, size unresolved' (above 0) or "
                       f"'less, size unresolved' (below 0): the sign is known, not whether the difference is smaller or "
                       f"larger than the margin; one that holds 0 and reaches the margin is 'inconclusive'. A bound "
                       f"exactly on ±{a.margin:g} or on 0 is not beyond it; bounds are printed with the digits that show "
                       f"their side of both. The same model under two "
                       "conditions measured on the same images (augmented / circular against centred, transfer against "
                       "control, the two probes) is a paired contrast too; aligned against unaligned agreement is the "
                       "per-image difference. Only centred test accuracy against mean shifted accuracy (different "
                       "image sets) uses the conservative interval [low_A − high_B, high_A − low_B]; the probe is "
                       "compared with chance (0.5) by its own interval."),
        ("Hardware", f"{meta.hardware}; device {meta.device}; "
                     + (f"{meta.ranks} torch.distributed ranks, " if meta.ranks > 1 else "")
                     + f"{meta.workers} worker process(es), {meta.threads_per_worker} thread(s) each"),
        ("Software", f"torch {meta.torch_version}, shiftlab {meta.shiftlab_version}"),
        ("Wall time", f"{fmt_seconds(meta.seconds)}"
                      + (f" over {meta.sessions} sessions (resumed)" if meta.sessions > 1 else "")
                      + f" (first started {meta.started})"),
        ("Rebuild", f"<pre>{esc(command)}</pre>" + (f'<p class="note">{esc(note)}</p>' if note else "")
                    + f"<pre>shiftlab report {esc(run_dir)}</pre>"),
    ]
    raw = {"Models", "Conditions", "Rebuild"}
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v if k in raw else esc(v)}</dd>" for k, v in items)
    thresholds = "".join(f"<tr><td><code>{esc(k)}</code></td><td class=\"num\">{v:g}</td><td>{esc(d)}</td></tr>"
                         for k, (v, d) in THRESHOLDS.items())
    return (f'<dl class="methods">{dl}</dl><h3>Thresholds</h3><p class="note">Named constants of '
            "<code>shiftlab.report.thresholds</code> that decide what intervals do not: when a layer is exact, when a "
            "downsampling aliases, when a cell is at chance.</p>"
            "<table><thead><tr><th>constant</th><th>value</th><th>meaning</th></tr></thead>"
            f"<tbody>{thresholds}</tbody></table><details><summary>Full configuration (config.json)</summary>"
            f"<pre>{esc(json.dumps(cfg, indent=2, sort_keys=True))}</pre></details>")
