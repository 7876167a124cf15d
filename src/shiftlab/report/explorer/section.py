"""The report's shift explorer section (``docs/explorer.md``): the controls as HTML, the runs'
explorer data as an inline JSON block, and a plain script (``explorer.js``, package data) that
draws the image at the chosen position and, for every chosen model, the predicted class, its
probability and the class map. Nothing is fetched: the page stays one self-contained file."""

from __future__ import annotations

import json
from importlib.resources import files

from shiftlab.report.fmt import esc
from shiftlab.report.prose import name
from shiftlab.study.conditions import condition
from shiftlab.study.records import RunRecord
from shiftlab.study.results import StudyResults
from shiftlab.zoo.spec import names, spec

from .table import explorer_runs

__all__ = ["DEFAULT_MODELS", "explorer_css", "explorer_section", "shown_runs"]

#: Models chosen when the page opens (those the study has): the FCN, its anti-aliased twin and
#: the classic max-pool CNN; otherwise the first two models.
DEFAULT_MODELS = ("strided_gap", "blurstrided_gap", "maxpool_fc")


def _asset(filename: str) -> str:
    return files("shiftlab.report.explorer").joinpath(filename).read_text(encoding="utf-8")


def explorer_css() -> str:
    """The explorer's style rules, for the page's ``<style>``."""
    return _asset("explorer.css")


def shown_runs(results: StudyResults) -> list[RunRecord]:
    """The runs the page's explorer shows: for every model and condition of the main width whose
    evaluation images and classes are the dataset's (not the transfer or probe conditions), the
    lowest seed that holds explorer data, on the same evaluation images as the first such run."""
    chosen: dict[tuple[str, str], RunRecord] = {}
    width = results.config.get("width")
    for r in explorer_runs(results):
        cond = condition(r.condition)
        if cond.transfer or cond.probe or (width is not None and r.width != width):
            continue
        key = (r.model, r.condition)
        if key not in chosen or r.seed < chosen[key].seed:
            chosen[key] = r
    runs = list(chosen.values())
    if not runs:
        return []
    first = runs[0].explorer
    assert first is not None
    same = (first.radius, first.canvas_shape, first.images, first.pixels)
    return [r for r in runs if r.explorer is not None
            and (r.explorer.radius, r.explorer.canvas_shape, r.explorer.images, r.explorer.pixels) == same]


def _payload(results: StudyResults, runs: list[RunRecord]) -> dict:
    first = runs[0].explorer
    assert first is not None
    models = [m for m in results.config.get("models", []) if any(r.model == m for r in runs)]
    models += sorted({r.model for r in runs} - set(models))
    defaults = [m for m in DEFAULT_MODELS if m in models] or models[:2]
    conditions = list(dict.fromkeys(r.condition for r in runs))
    return {
        "radius": first.radius, "canvas": first.canvas_shape[1:], "classes": results.meta.classes,
        "images": first.images, "labels": first.labels, "pixels": first.pixels,
        "models": [{"id": m, "name": name(m), "description": spec(m).description if m in names() else m} for m in models],
        "conditions": conditions, "default_models": defaults,
        "default_condition": "centred" if "centred" in conditions else conditions[0],
        "runs": [{"model": r.model, "condition": r.condition, "seed": r.seed, "stride": r.total_stride,
                  "classes": r.explorer.classes, "confidence": r.explorer.confidence}
                 for r in runs if r.explorer is not None],
    }


def _controls(payload: dict) -> str:
    classes, r = payload["classes"], payload["radius"]
    conds = "".join(f'<option value="{esc(c)}" title="{esc(condition(c).description)}"'
                    f'{" selected" if c == payload["default_condition"] else ""}>{esc(c)}</option>'
                    for c in payload["conditions"])
    images = "".join(f'<option value="{i}">image {esc(index)} of the evaluation set: {esc(classes[y])}</option>'
                     for i, (index, y) in enumerate(zip(payload["images"], payload["labels"], strict=True)))
    models = "".join(f'<label title="{esc(m["description"])}"><input type="checkbox" name="xp-model" value="{esc(m["id"])}"'
                     f'{" checked" if m["id"] in payload["default_models"] else ""}> {esc(m["name"])}</label>'
                     for m in payload["models"])
    position = "".join(f'<label for="xp-{axis}">{axis} ({way})</label><input type="number" id="xp-{axis}" '
                       f'min="{-r}" max="{r}" step="1" value="0">' for axis, way in (("dy", "down"), ("dx", "right")))
    return (f'<div class="xp-controls"><p><label for="xp-condition">Training condition</label>'
            f'<select id="xp-condition">{conds}</select></p>'
            f'<p><label for="xp-image">Evaluation image</label><select id="xp-image">{images}</select></p>'
            f'<fieldset><legend>Models</legend>{models}</fieldset>'
            f'<fieldset class="xp-move"><legend>Position (pixels)</legend>{position}'
            '<button type="button" id="xp-centre">Back to (0, 0)</button></fieldset></div>')


def explorer_section(results: StudyResults) -> str:
    """The ``<section id="explorer">`` of the report: the explorer, or, for a study whose records
    hold no explorer data, a note that says how to compute it (then the page has no script)."""
    head = '<section id="explorer"><h2>Shift explorer</h2>'
    runs = shown_runs(results)
    if not runs:
        reason = ("this study's runs do not hold: they were run before the explorer existed" if not explorer_runs(results)
                  else "no run of the centred, augmented or circular conditions holds")
        return (f'{head}<p class="note">The shift explorer (move one image, see every model\'s prediction at each '
                f"position) needs data that {reason}. <code>shiftlab report RUN_DIR --explorer</code> computes it from "
                "the run's checkpoints (<code>RUN_DIR/checkpoints/</code>) and rebuilds this page; results published "
                "without checkpoints need the study run again. A study run with this version of shiftlab records it."
                "</p></section>")
    payload = _payload(results, runs)
    ex = runs[0].explorer
    assert ex is not None
    n, size = ex.n_images, 2 * ex.radius + 1
    seeds = sorted({r.seed for r in runs})
    note = (f"Move one of {n} evaluation images (of every class) on its canvas and watch each model's prediction. Every "
            f"position of the {size} × {size} square (dy, dx) in [{-ex.radius}, {ex.radius}]² was measured (the "
            "study's statistics use the shifts of its shift set, all inside this square): the class map of each "
            "model shows the predicted class at every position, the current one outlined and the multiples of the "
            "total stride S ringed. Drag the image, or focus it and press the arrow keys (one pixel a step; "
            "Shift+arrow: S pixels; Home: back to the centre). Probabilities are the softmax probability of the "
            f"predicted class, stored to 1/255. Seed {esc(', '.join(map(str, seeds)))} of each model; the other "
            "seeds' data, where recorded, are in <code>results.json</code> "
            "(<code>shiftlab.report.explorer_table</code>).")
    # no "<" in the script element, whatever the results hold: JSON reads \u003c back as "<"
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")
    return (f'{head}<p class="note">{note}</p>'
            f'<div class="xp" id="xp" data-ready="false">{_controls(payload)}'
            '<div class="xp-stage"><canvas id="xp-canvas" tabindex="0" role="application" '
            'aria-roledescription="movable image" aria-label="The image on its canvas: drag it, or press the arrow '
            'keys to move it one pixel, Shift+arrow to move it S pixels, Home to centre it" '
            'aria-describedby="xp-status"></canvas><p id="xp-position" class="xp-position"></p></div>'
            '<div id="xp-legend" class="xp-legend"></div><div id="xp-panels" class="xp-panels"></div>'
            '<p id="xp-status" class="xp-sr" aria-live="polite"></p></div>'
            '<noscript><p class="note">The shift explorer needs JavaScript.</p></noscript>'
            f'<script type="application/json" id="xp-data">{data}</script>'
            f"<script>{_asset('explorer.js')}</script></section>")
