"""The words of the report: sentences rendered from the typed points and claim results.

The rules (``docs/study.md``, "Verdict"): every label comes from a decision against the margin
(``docs/definitions.md``, "Intervals") and is written with its interval: "more" / "less" beyond
the margin, "about the same" inside it, "more" / "less" "by an amount that may be smaller or
larger than the margin" when the interval excludes 0 but reaches the margin, "inconclusive" when
it holds 0 and reaches the margin; a model that did not reach the target training accuracy
under-fits and is never called worse-performing.
"""

from __future__ import annotations

from shiftlab.stats import LESS_UNRESOLVED, MORE_UNRESOLVED, Comparison, Effect, Interval, direction
from shiftlab.study.analysis import CellStats
from shiftlab.study.results import StudyResults

from .claims import ClaimResult
from .claims.c7_sources import UNDER_FITS
from .evidence import comparison, models
from .fmt import fmt, fmt_diff, fmt_error, fmt_int, fmt_interval
from .points import (
    CONTROL_PAIRS,
    NOT_MEASURED,
    CapacityPoint,
    ClaimPoint,
    EffectsPoint,
    MechanismPoint,
    PairPoint,
    PerformancePoint,
)
from .thresholds import ALIASING_VS_BLUR

__all__ = ["ROLES", "answer", "capacity_text", "claim_text", "effect_text", "mechanism_text", "name", "pair_text",
           "performance_text"]

#: What the question calls each model of the zoo.
ROLES = {
    "strided_gap": "the Strided-CNN FCN",
    "allconv_gap": "the All-CNN FCN",
    "avgpool_gap": "the average-pool GAP network",
    "learned_gap": "the learned-filter FCN",
    "learnedblur_gap": "the learned-filter FCN from the blur",
    "maxpool_fc": "the classic max-pool CNN",
    "maxpool_gap": "the max-pool network with the same global-pool head",
    "blurstrided_gap": "the anti-aliased FCN",
    "maxblur_fc": "the anti-aliased classic CNN",
    "maxblur_gap": "the anti-aliased max-pool GAP network",
    "strided_fc": "the strided CNN with an FC head",
    "aps_gap": "the APS network",
}
_CONDITIONS = {"centred": "trained on centred objects", "augmented": "trained with random translations",
               "circular": "trained on centred objects with circular padding"}


def _trained(condition: str) -> str:
    """How the models of ``condition`` were trained, in words (the condition's name if unknown)."""
    return _CONDITIONS.get(condition, condition)


_FACTORS = {"downsampling": "downsampling", "head": "head", "condition": "training"}


def name(model: str) -> str:
    """``"the Strided-CNN FCN (strided_gap)"``, or the model's name when it has no role in the question.

    Example:
        >>> name("strided_gap"), name("aps_gmp")
        ('the Strided-CNN FCN (strided_gap)', 'aps_gmp')
    """
    role = ROLES.get(model)
    return f"{role} ({model})" if role else model


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


#: The outcomes whose interval excludes 0 but reaches the margin: the sign, not the size.
UNRESOLVED = (MORE_UNRESOLVED, LESS_UNRESOLVED)


def unresolved(margin: float | None) -> str:
    """What a "more, size unresolved" / "less, size unresolved" adds to "more" / "less".

    Example:
        >>> unresolved(0.02)
        'by an amount that may be smaller or larger than the margin of 0.02'
    """
    return "by an amount that may be smaller or larger than the margin" + (f" of {margin:g}" if margin else "")


def inconclusive(margin: float | None) -> str:
    """Why an interval is "inconclusive".

    Example:
        >>> inconclusive(0.02)
        'its interval holds 0 and reaches the margin of 0.02'
    """
    return "its interval holds 0 and reaches the margin" + (f" of {margin:g}" if margin else "")


def _value(cell: CellStats | None, metric: str) -> str:
    iv = cell.metrics.get(metric) if cell is not None else None
    return fmt(iv.estimate) if iv is not None else "n/a"


def _diff_clause(label: str, c: Comparison, a: CellStats | None, b: CellStats | None, metric: str) -> str:
    """``"consistency 0.312 vs 0.212, difference +0.10 [95% CI +0.07, +0.13]"``."""
    return f"{label} {_value(a, metric)} vs {_value(b, metric)}, difference {fmt_diff(c.interval, margin=c.margin)}"


_INVARIANT = {"more": "is more translation invariant than", "less": "is less translation invariant than",
              "about the same": "is about as translation invariant as",
              MORE_UNRESOLVED: "is more translation invariant than", LESS_UNRESOLVED: "is less translation invariant than"}


def _sizes(a: CellStats | None, b: CellStats | None) -> str:
    """What the two models cost and see, e.g. ``" (receptive field 15 vs 22 px, 1.4 M vs 5.7 M
    multiply-adds, 24,170 vs 24,170 parameters)"``: a matched pair is read with them beside it."""
    if a is None or b is None:
        return ""
    return (f" (receptive field {a.receptive_field} vs {b.receptive_field} px, {a.macs / 1e6:.1f} M vs "
            f"{b.macs / 1e6:.1f} M multiply-adds, {fmt_int(a.params)} vs {fmt_int(b.params)} parameters)")


def pair_text(p: PairPoint) -> str:
    """One matched pair on invariance: the consistency comparison and the conditional one."""
    a, b = name(p.pair.a), name(p.pair.b)
    if p.consistency is None:
        missing = [m for m, cell in ((p.pair.a, p.a), (p.pair.b, p.b)) if cell is None]
        why = f"the run has no {' and no '.join(missing)}" if missing else "no paired consistency"
        return f"{_cap(a)} against {b}: not measured ({why} in {p.condition})."
    cons = _diff_clause("consistency", p.consistency, p.a, p.b, "consistency")
    if p.outcome == "inconclusive":
        text = (f"Whether {a} is more or less translation invariant than {b} is inconclusive: {cons}; "
                f"{inconclusive(p.consistency.margin)}")
    elif p.outcome in UNRESOLVED:
        text = f"{_cap(a)} {_INVARIANT[p.outcome]} {b}, {unresolved(p.consistency.margin)}: {cons}"
    else:
        text = f"{_cap(a)} {_INVARIANT[p.outcome]} {b}: {cons}"
    if p.conditional is not None:
        text += (f"; conditional consistency (over the images each classifies correctly at the centre) "
                 f"{_value(p.a, 'consistency_correct')} vs {_value(p.b, 'consistency_correct')}, difference "
                 f"{fmt_diff(p.conditional.interval, margin=p.conditional.margin)} ({p.conditional.outcome})")
        sign = direction(p.outcome)
        if sign in (1, -1) and p.conditional.outcome == p.outcome:
            text += ", so the difference is not an effect of accuracy"
        elif sign in (1, -1) and direction(p.conditional.outcome) == sign:
            text += ", so the direction of the difference is not an effect of accuracy"
        elif sign in (1, -1):
            text += ", so part of the difference may come from accuracy rather than invariance"
    text += f"{_sizes(p.a, p.b)}."
    if p.trivial:
        text += (f" Caution: {', '.join(p.trivial)} {'is' if len(p.trivial) == 1 else 'are'} at chance level here; "
                 "a constant classifier is trivially invariant.")
    return text


#: What the signature's decision says ({size}: how much, for the outcomes that leave it unresolved).
_SIGNATURE = {"more": "higher at the multiples: the aliasing signature",
              "less": "lower at the multiples",
              "about the same": "about the same at every shift: no aliasing signature",
              MORE_UNRESOLVED: "higher at the multiples{size}: the aliasing signature's direction",
              LESS_UNRESOLVED: "lower at the multiples{size}"}
#: The same when the multiples lie farther out than the other shifts ({far} and {near}: mean px).
_SIGNATURE_FAR = {
    "more": "higher at the multiples, although they lie farther out, {far:.1f} px on average against {near:.1f} px: "
            "the aliasing signature",
    "less": "lower at the multiples, which lie farther out, {far:.1f} px on average against {near:.1f} px: "
            "agreement that falls with distance, not the aliasing signature",
    "about the same": _SIGNATURE["about the same"],
    MORE_UNRESOLVED: "higher at the multiples, although they lie farther out, {far:.1f} px on average against "
                     "{near:.1f} px{size}: the aliasing signature's direction",
    LESS_UNRESOLVED: "lower at the multiples, which lie farther out, {far:.1f} px on average against {near:.1f} px{size}: "
                     "agreement that falls with distance, not the aliasing signature"}


def _signature(p: MechanismPoint, margin: float | None = None) -> str:
    size = (f", by {fmt_diff(p.gap, margin=margin)}, {unresolved(margin).removeprefix('by ')}"
            if p.gap is not None and p.signature in UNRESOLVED else "")
    far, near = p.aligned_distance, p.unaligned_distance
    if far is not None and near is not None and far > near:
        return _SIGNATURE_FAR[p.signature].format(far=far, near=near, size=size)
    return _SIGNATURE[p.signature].format(size=size)


def mechanism_text(p: MechanismPoint, margin: float | None = None) -> str:
    """Why a model is (not) invariant: its aliasing signature (decided against ``margin``) and its
    first downsampling layer."""
    who = name(p.model)
    if p.aligned is None or p.unaligned is None:
        text = f"{_cap(who)}: agreement at multiples of the total stride not measured."
    else:
        if p.signature in _SIGNATURE:
            sig = _signature(p, margin)
        elif p.gap is not None:  # the interval the signature was decided on
            sig = f"an inconclusive difference of {fmt_diff(p.gap, margin=margin)}"
        else:
            sig = "their difference not measured"
        matched = p.aligned_distance is not None and p.aligned_distance == p.unaligned_distance
        where = f", both at {p.aligned_distance:g} px" if matched else ""
        text = (f"{_cap(who)} agrees with its unshifted prediction {fmt_interval(p.aligned)} at the non-zero multiples "
                f"of its total stride S = {p.stride} and {fmt_interval(p.unaligned)} at other shifts{where} ({sig}).")
    if p.outcome == NOT_MEASURED:
        return text
    layer = (f" Its first downsampling layer ({p.layer}), under circular shifts: interior error "
             f"{fmt_error(p.aligned_interior_error)} at shifts that are multiples of its stride and "
             f"{fmt_error(p.unaligned_interior_error)} at other shifts, against "
             f"{fmt_error(p.reference_unaligned_interior_error)} for the anti-aliased FCN's BlurPool; full-map error "
             f"{fmt_error(p.aligned_error)} at the multiples")
    alone = (f"its unaligned interior error is within {ALIASING_VS_BLUR:g}x the BlurPool's, so this layer alone is "
             "not labelled aliasing (the network's signature above is read at its output, after every stage)")
    reading = {"aliasing": f"aliasing at this layer (its unaligned interior error at least {ALIASING_VS_BLUR:g}x the "
                           "BlurPool's), not the border",
               "boundary": f"a boundary (padding) effect; {alone}",
               "aliasing and boundary": f"aliasing at this layer (at least {ALIASING_VS_BLUR:g}x the BlurPool's "
                                        "unaligned error), plus a boundary (padding) effect near the border",
               "neither": f"no boundary effect; {alone}"}[p.outcome]
    return text + layer + f": {reading}."


_ACCURATE = {"more": "is more accurate than", "less": "is less accurate than",
             "about the same": "performs about as well as",
             MORE_UNRESOLVED: "is more accurate than", LESS_UNRESOLVED: "is less accurate than"}


def _under_fit_clause(cell: CellStats, target: float | None) -> str:
    seeds = (f" in {cell.n_seeds - (cell.converged or 0)} of {cell.n_seeds} seeds"
             if cell.converged else "")
    target_txt = f" < target {target:g}" if target is not None else ""
    return f"{cell.model} under-fits (training accuracy {fmt(cell.final_train_accuracy)}{target_txt}{seeds})"


def performance_text(p: PerformancePoint) -> str:
    """One matched pair on test accuracy, or why it is not compared."""
    a, b = name(p.pair.a), name(p.pair.b)
    where = _trained(p.condition)
    if p.outcome == NOT_MEASURED or p.accuracy is None:
        return f"{_cap(a)} against {b} ({where}): performance not measured."
    if p.outcome == UNDER_FITS:
        cells = [c for c in (p.a, p.b) if c is not None and c.model in p.under_fitting]
        return (f"{_cap(a)} against {b} ({where}) is not compared on performance: "
                + " and ".join(_under_fit_clause(c, p.target) for c in cells)
                + ": its test accuracy shows what this training reached, not what the architecture can.")
    acc = _diff_clause("test accuracy", p.accuracy, p.a, p.b, "test_accuracy")
    shifted = [_diff_clause(label, c, p.a, p.b, metric) + f" ({c.outcome})"
               for label, metric, c in (("accuracy averaged over the shifts", "accuracy", p.shifted),
                                        ("worst-case accuracy over the shifts", "worst_case", p.worst_case))
               if c is not None]
    acc += "".join(f"; {clause}" for clause in shifted)
    size = _sizes(p.a, p.b)
    if p.outcome == "inconclusive":
        return (f"Whether {a} performs better or worse than {b} ({where}) is inconclusive: {acc}{size}; "
                f"{inconclusive(p.accuracy.margin)}.")
    if p.outcome in UNRESOLVED:
        return f"{_cap(a)} {_ACCURATE[p.outcome]} {b} ({where}), {unresolved(p.accuracy.margin)}: {acc}{size}."
    return f"{_cap(a)} {_ACCURATE[p.outcome]} {b} ({where}): {acc}{size}."


_ACROSS = {"more": "more translation invariant than", "less": "less translation invariant than",
           "about the same": "about as translation invariant as",
           MORE_UNRESOLVED: "more translation invariant than", LESS_UNRESOLVED: "less translation invariant than"}


def capacity_text(p: CapacityPoint) -> str:
    """One matched pair across the capacity sweep: consistency and test accuracy at every width."""
    a, b = name(p.pair.a), name(p.pair.b)
    if not p.rows:
        return f"{_cap(a)} against {b}: not measured across widths."
    widths = ", ".join(str(r.width) for r in p.rows)
    margin = next((r.consistency.margin for r in p.rows if r.consistency is not None), None)
    signs = {direction(r.consistency.outcome) for r in p.rows if r.consistency is not None}
    if p.outcome in UNRESOLVED:
        lead = f"At every width ({widths}), {a} is {_ACROSS[p.outcome]} {b}, {unresolved(margin)}"
    elif p.outcome in _ACROSS:
        lead = f"At every width ({widths}), {a} is {_ACROSS[p.outcome]} {b}"
    elif p.outcome == "depends on width" and signs in ({1}, {-1}):  # resolved at some widths, not at others
        word = "more" if signs == {1} else "less"
        lead = (f"At every width ({widths}), {a} is {word} translation invariant than {b}, beyond the margin at some "
                f"widths and {unresolved(margin)} at others")
    elif p.outcome == "depends on width":
        lead = f"Whether {a} is more or less translation invariant than {b} depends on the width ({widths})"
    else:
        lead = f"Across widths {widths}, whether {a} is more or less translation invariant than {b} is inconclusive"
    parts = []
    for r in p.rows:
        size = f"{fmt_int(r.a.params)} vs {fmt_int(r.b.params)} parameters" if r.a and r.b else "size n/a"
        cons = (f"consistency {fmt_diff(r.consistency.interval, margin=r.consistency.margin)} ({r.consistency.outcome})"
                if r.consistency else "")
        acc = (f"test accuracy {fmt_diff(r.accuracy.interval, margin=r.accuracy.margin)} ({r.performance})"
               if r.accuracy else "")
        parts.append(f"width {r.width} ({size}): " + ", ".join(x for x in (cons, acc) if x))
    return f"{lead}: " + "; ".join(parts) + "."


def _levels(e: Effect, k: int) -> str:
    a, b = e.levels[k]
    return f"{_FACTORS.get(e.factors[k], e.factors[k])} {a} vs {b}"


def effect_text(e: Effect, outcome: str, margin: float | None = None) -> str:
    """A factorial effect with its interval and decision (against ``margin``).

    Example:
        >>> effect_text(Effect("main", ("head",), (("gap", "fc"),), "consistency", Interval(0.37, 0.26, 0.49)), "more")
        'head gap vs fc: consistency +0.37 [95% CI +0.26, +0.49] (more)'
    """
    what = _levels(e, 0) if e.kind == "main" else f"interaction of {_levels(e, 0)} and {_levels(e, 1)}"
    metric = {"test_accuracy": "test accuracy"}.get(e.metric, e.metric)
    return f"{what}: {metric} {fmt_diff(e.interval, margin=margin)} ({outcome})"


def _effects_paragraph(p: EffectsPoint, margin: float) -> str:
    if not p.effects:
        return ("Where the invariance comes from: not measured as factorial effects (the models and conditions of this "
                "run do not form a balanced design).")
    mains = [(e, o) for e, o in p.effects if e.kind == "main"]
    inter = [(e, o) for e, o in p.effects if e.kind == "interaction"]
    text = ("Where the invariance comes from, as main effects of the balanced factorial on consistency (each level "
            "against the other, averaged over every combination of the other factors): "
            + "; ".join(effect_text(e, o, margin) for e, o in mains) + ".")
    strong = [(e, o) for e, o in inter if o in ("more", "less")]
    if strong:
        text += (" The factors interact (" + "; ".join(effect_text(e, o, margin) for e, o in strong) + "): the effect of one "
                 "depends on the level of the other, so only matched pairs, not averages over unlike models, answer "
                 "the question.")
    elif inter:
        text += " No two-way interaction clears the margin (" + "; ".join(effect_text(e, o, margin) for e, o in inter) + ")."
    return text


def _claim_intervals(r: ClaimResult, suffix: str) -> dict[str, Interval]:
    return {k[: -len(suffix)]: v for k, v in r.intervals.items() if k.endswith(suffix)}


def _heads_under_fit(r: ClaimResult, model: str) -> str:
    """``"; the new head under-fits, training accuracy ..."`` when a side of ``model``'s transfer
    contrast stopped below the target training accuracy in some seed, else ``""``."""
    sides = [(side, r.numbers.get(f"{model}:{side}:train_accuracy"), r.numbers.get(f"{model}:{side}:under_fit_seeds"))
             for side in ("transfer", "control")]
    short = [f"{fmt(acc)} ({side})" for side, acc, seeds in sides if seeds]
    if not short:
        return ""
    target = r.numbers.get("target_accuracy")
    return (f"; the new head under-fits, training accuracy {' and '.join(short)}"
            + (f" < target {target:g}" if target is not None else ""))


def _transfer_text(r: ClaimResult, margin: float | None = None) -> str:
    if r.status == NOT_MEASURED:
        return "Transfer (C9): not measured" + (f" ({'; '.join(r.notes)})." if r.notes else ".")
    diffs = {k: d for k, d in _claim_intervals(r, ":consistency").items() if ":" not in k}
    marks = {key: _heads_under_fit(r, key) for key in diffs}
    parts = []
    for key, diff in diffs.items():
        t, c = r.intervals[f"{key}:transfer:consistency"], r.intervals[f"{key}:control:consistency"]
        parts.append(f"{key} {fmt(t.estimate)} vs {fmt(c.estimate)}, difference {fmt_diff(diff, margin=margin)} "
                     f"({r.outcomes[f'{key}:consistency']}{marks[key]})")
    text = ("Transfer (C9): on the held-out classes, trained only at the centre, consistency with a trunk trained on "
            "translated objects of the other classes against a trunk trained on centred ones: " + "; ".join(parts)
            + f". Status: {r.status} (paired intervals).")
    fitted: dict[str, list[str]] = {}
    for key in diffs:
        if not marks[key]:
            fitted.setdefault(r.outcomes[f"{key}:consistency"], []).append(key)
    if fitted and any(marks.values()):
        text += (" Where both new heads reach the target in every seed: "
                 + "; ".join(f"{outcome} for {', '.join(keys)}" for outcome, keys in fitted.items()) + ".")
    return text + (f" Note: {'; '.join(r.notes)}." if r.notes else "")


_CHANCE = {"more": "above chance", "less": "below chance", "about the same": "at chance",
           MORE_UNRESOLVED: "above chance, by an amount that may be smaller or larger than the margin",
           LESS_UNRESOLVED: "below chance, by an amount that may be smaller or larger than the margin",
           "inconclusive": "inconclusive against chance"}


def _probe_text(r: ClaimResult, margin: float | None = None) -> str:
    if r.status == NOT_MEASURED and not r.intervals:
        return "Position probe (C8): not measured."
    parts = []
    for m in dict.fromkeys(k.split(":")[0] for k in r.intervals):
        cells = [f"{cond} {fmt_interval(r.intervals[f'{m}:{cond}'], margin=margin, reference=0.5)} "
                 f"({_CHANCE[r.outcomes[f'{m}:{cond}']]})"
                 for cond in ("probe", "probe_circular") if f"{m}:{cond}" in r.intervals]
        parts.append(f"{m}: " + ", ".join(cells))
    text = ("Position probe (C8; the class is the object's side, chance 0.5; zero padding vs circular padding): "
            + "; ".join(parts) + f". Status for the global-pool models: {r.status}.")
    fc = [m for m in dict.fromkeys(k.split(":")[0] for k in r.intervals) if m.endswith("_fc")]
    if fc:
        text += " FC heads read position off the flattened map whatever the padding."
    return text


def claim_text(r: ClaimResult, margin: float | None = None) -> str:
    """The measured evidence of a claim, one or a few sentences; ``margin``: the one its
    differences were decided against (their intervals get the digits that show it)."""
    n, iv, o = r.numbers, r.intervals, r.outcomes
    notes = f" ({'; '.join(r.notes)})" if r.notes else ""
    if r.status == NOT_MEASURED and not (n or iv):
        return "Not measured" + notes + "."
    if r.id == "C1":
        per = sorted(m.split(":")[0] for m in n if m.endswith(":interior_error"))
        text = (f"First stride-1 convolution of {', '.join(per) or 'no model'}: interior error at most "
                f"{fmt_error(n.get('interior_error_max'))}, full-map error with zero padding at most "
                f"{fmt_error(n.get('full_error_max'))} (the border)")
        if n.get("circular_full_error_max") is not None:
            text += f"; with circular padding the full map is off by at most {fmt_error(n['circular_full_error_max'])}"
        return text + notes + "."
    if r.id == "C2":
        per = [f"{k.split(':')[0]} {fmt_error(v)} vs {fmt_error(n[k.replace('aligned_error', 'unaligned_error')])}"
               for k, v in n.items() if k.endswith(":aligned_error") and not k.endswith(":unaligned_error")]
        return (f"First downsampling layer, interior error at multiples of its stride vs other shifts: "
                f"{'; '.join(per)}. {n['layers_ok']:.0f} of {n['layers']:.0f} layers are exact at the multiples and "
                f"alias elsewhere" + notes + ".")
    if r.id == "C3":
        per = [f"{k.split(':')[0]}: pool {fmt_error(v)} (its input {fmt_error(n[k.replace('pool_error', 'input_error')])})"
               for k, v in n.items() if k.endswith(":pool_error")]
        return ("Circular padding, circular shifts by multiples of the total stride, largest error over seeds: "
                + "; ".join(per) + notes + ".")
    if r.id == "C4":
        exact = [f"{k.split(':')[0]} {fmt_error(v)} at multiples of S, {fmt_error(n.get(k.replace('aligned', 'other')))} "
                 "elsewhere" for k, v in n.items() if k.endswith(":circular_error_aligned")]
        canvas = [f"{k.split(':')[0]} {fmt(iv[k.split(':')[0] + ':aligned'].estimate)} vs "
                  f"{fmt(iv[k.split(':')[0] + ':unaligned'].estimate)}, difference {fmt_diff(v, margin=margin)} ({o[k]})"
                  for k, v in iv.items() if k.endswith(":aligned-unaligned")]
        parts = []
        if exact:
            parts.append("Output error of the global-pool models under circular padding: " + "; ".join(exact))
        if canvas:
            parts.append("on the canvas, agreement at multiples of S vs other shifts: " + "; ".join(canvas))
        return _cap("; ".join(parts)) + notes + "."
    if r.id == "C5":
        per = [f"{k.split(':')[0]} flip rate {fmt_interval(v)}, consistency "
               f"{fmt_interval(iv[k.replace('flip_rate', 'consistency')])}"
               for k, v in iv.items() if k.endswith(":flip_rate")]
        text = "Max-pool models, centred training: " + "; ".join(per)
        if "effect:maxpool-strided" in iv:
            text += (f". Main effect of max-pool over strided downsampling on consistency: "
                     f"{fmt_diff(iv['effect:maxpool-strided'], margin=margin)} ({o['effect:maxpool-strided']})")
        return text + notes + "."
    if r.id == "C6":
        labels = {"fcn_head": "strided trunk, gap minus fc", "maxpool_head": "max-pool trunk, gap minus fc",
                  "effect:gap-fc": "main effect of the head, gap minus fc"}
        return ("Consistency, " + "; ".join(f"{labels[k]}: {fmt_diff(v, margin=margin)} ({o[k]})" for k, v in iv.items())
                + notes + ".")
    if r.id == "C7":
        labels = {"head:gap-fc": "global-pool head (vs FC)", "condition:augmented-centred": "augmentation (vs centred)"}
        src = [f"{labels.get(k, k.split(':')[1].replace('-', ' vs ') + ' downsampling')} "
               f"{fmt_diff(iv[k], margin=margin)} ({o[k]})"
               for k in iv if k.split(":")[0] in ("head", "condition", "downsampling")]
        text = "Main effects on consistency: " + "; ".join(src) if src else "No factorial effects"
        if "fcn_vs_classic:test_accuracy" in o:
            perf = o["fcn_vs_classic:test_accuracy"]
            text += (". FCN minus classic CNN test accuracy: "
                     + ("not compared, a model under-fits" if perf == UNDER_FITS
                        else f"{fmt_diff(iv['fcn_vs_classic:test_accuracy'], margin=margin)} ({perf})"))
        if "strided_gap:centred-shifted_accuracy" in iv:
            text += (f". The FCN's centred test accuracy minus its accuracy over the shift set: "
                     f"{fmt_diff(iv['strided_gap:centred-shifted_accuracy'], margin=margin)} "
                     f"({o['strided_gap:centred-shifted_accuracy']}): how much the centred test images carry")
        return text + notes + "."
    if r.id == "C8":
        return _probe_text(r, margin)
    if r.id == "C9":
        return _transfer_text(r, margin)
    return "; ".join(f"{k} {fmt_interval(v)}" for k, v in iv.items()) + notes + "."


_LEAD_CLAUSE = {"more": "more translation invariant than {b}", "less": "less translation invariant than {b}",
                "about the same": "about as translation invariant as {b}",
                MORE_UNRESOLVED: "more translation invariant than {b} (by an amount that may be smaller or larger "
                                 "than the margin)",
                LESS_UNRESOLVED: "less translation invariant than {b} (by an amount that may be smaller or larger "
                                 "than the margin)",
                "inconclusive": "not conclusively more or less invariant than {b}", NOT_MEASURED: "not measured against {b}"}


def _lead(a: PairPoint | None, b: PairPoint | None) -> str:
    """The one-line answer to the first question ("as translation invariant as?") from the outcomes
    of pairs (a) and (b). "more, size unresolved" is a yes (at least as invariant); "less, size
    unresolved" is neither yes nor no (less, but perhaps by less than the margin)."""
    oa, ob = (p.outcome if p is not None else NOT_MEASURED for p in (a, b))
    if oa == ob == "less":
        word = "No"
    elif {oa, ob} <= {"more", "about the same", MORE_UNRESOLVED}:
        word = "Yes"
    elif {oa, ob} == {"more", "less"}:
        word = "Not as a rule (it depends on the head it is compared with)"
    elif "less" in (oa, ob):
        word = "Not in general"
    else:
        word = "Not settled by this run"
    clauses = [_LEAD_CLAUSE[o].format(b=who) for o, who in ((oa, "the classic max-pool CNN (a)"),
                                                            (ob, "the max-pool network with the same head (b)"))]
    return f"{word}: the Strided-CNN FCN is {clauses[0]} and {clauses[1]}."


def _under_fitting_text(points: list[PerformancePoint]) -> str:
    """One sentence for every performance pair left out because a model under-fits, each pair with
    its condition (the same pair may be compared in another condition, where both converged)."""
    pairs = list(dict.fromkeys(f"{name(p.pair.a)} against {name(p.pair.b)} ({_trained(p.condition)})"
                               for p in points))
    cells: dict[str, list[str]] = {}
    for p in points:
        for c in (p.a, p.b):
            if c is not None and c.model in p.under_fitting:
                cells.setdefault(c.model, [])
                entry = f"{fmt(c.final_train_accuracy)} {c.condition}"
                if entry not in cells[c.model]:
                    cells[c.model].append(entry)
    target = points[0].target
    target_txt = f" < target {target:g}" if target is not None else ""
    return ("Not compared on performance, because a model under-fits (its test accuracy shows what this training "
            "reached, not what the architecture can): " + "; ".join(pairs) + ". Under-fitting (training accuracy"
            + target_txt + "): " + "; ".join(f"{m} ({', '.join(v)})" for m, v in cells.items()) + ".")


def _matched_text(results: StudyResults) -> str:
    """The All-CNN FCN at the max-pool network's parameter count against the main width's models
    (centred), or nothing when the run has no parameter-matched runs."""
    a = results.analysis
    cell = a.matched_cell("allconv_gap")
    if cell is None:
        return ""
    parts = []
    for pid, reference, metric, what in (("allcnn_vs_classic", "maxpool_fc", "test_accuracy", "test accuracy"),
                                         ("allcnn_vs_maxpool_gap", "maxpool_gap", "consistency", "consistency"),
                                         ("allcnn_vs_classic", "maxpool_fc", "consistency", "consistency")):
        c = a.matched_comparison(pid, metric)
        ref = a.cell(reference, "centred")
        if c is None or ref is None:
            continue
        under = cell.all_converged is False or ref.all_converged is False
        label = UNDER_FITS if under and metric == "test_accuracy" else c.outcome
        parts.append(f"{what} against {name(reference)} {_value(cell, metric)} vs {_value(ref, metric)}, difference "
                     f"{fmt_diff(c.interval, margin=c.margin)} ({label})")
    if not parts:
        return ""
    return (f"At equal parameters (the All-CNN FCN at width {cell.width}: {fmt_int(cell.params)} parameters, "
            f"{cell.macs / 1e6:.1f} M multiply-adds, receptive field {cell.receptive_field} px; trained on centred "
            "objects): " + "; ".join(parts) + ".")


def _filters_text(results: StudyResults, condition: str) -> str:
    """The learned filters' alias fraction per stage (mean over seeds), or nothing."""
    parts = []
    for model in ("learned_gap", "learnedblur_gap"):
        shares = [r.alias_fraction for r in results.main_runs
                  if r.model == model and r.condition == condition and r.alias_fraction]
        if shares:
            means = [sum(s[i] for s in shares) / len(shares) for i in range(len(shares[0]))]
            parts.append(f"{model} {', '.join(f'{m:.2f}' for m in means)}")
    if not parts:
        return ""
    return (" Energy of the learned 4x4 filters above the new Nyquist frequency, per stage (0.07 for the binomial "
            "filter, about 0.75 for random ones): " + "; ".join(parts) + ".")


def answer(results: StudyResults, points: list, conditions: tuple[str, ...]) -> str:
    """The answer to the question, paragraphs separated by a blank line."""
    if not conditions:
        return "The results hold no canvas condition (centred, augmented or circular), so the question is not answered."
    ref = conditions[0]
    pairs = {(p.id, p.condition): p for p in points if isinstance(p, PairPoint)}
    a, b = pairs.get(("fcn_vs_classic", ref)), pairs.get(("fcn_vs_maxpool_gap", ref))
    paragraphs = [_lead(a, b) + f" Matched pairs, {_trained(ref)}, measured under translations of the "
                  "object on the canvas, follow."]
    for label, pid in (("(a)", "fcn_vs_classic"), ("(b)", "fcn_vs_maxpool_gap"), ("(c)", "fcn_twin"),
                       ("(c)", "classic_twin"), ("(c)", "maxpool_gap_twin"), ("(d)", "allcnn_vs_classic"),
                       ("(d)", "allcnn_vs_maxpool_gap"), ("(d)", "allcnn_vs_fcn")):
        p = pairs.get((pid, ref))
        if p is not None and (p.outcome != NOT_MEASURED or pid == "fcn_twin"):
            paragraphs.append(f"{label} {pair_text(p)}")
    matched = _matched_text(results)
    if matched:
        paragraphs.append(matched)
    controls = [pair_text(pairs[(pid, ref)]) for pid in CONTROL_PAIRS
                if (pid, ref) in pairs and pairs[(pid, ref)].outcome != NOT_MEASURED]
    if controls:
        paragraphs.append("Controls at equal support and receptive field (aliasing or receptive field?): "
                          + " ".join(controls) + _filters_text(results, ref))
    for cond in conditions[1:]:
        extra = [pair_text(pairs[(pid, cond)]) for pid in ("fcn_vs_classic", "fcn_vs_maxpool_gap")
                 if (pid, cond) in pairs and pairs[(pid, cond)].outcome != NOT_MEASURED]
        if extra:
            paragraphs.append(f"{_cap(_trained(cond))}: " + " ".join(extra))
    mech = {p.model: p for p in points if isinstance(p, MechanismPoint)}
    margin = results.analysis.margin
    why = [mechanism_text(mech[m], margin) for m in ("strided_gap", "blurstrided_gap", "maxpool_gap") if m in mech]
    twin = comparison(results, "fcn_twin", ref, "unaligned")
    if twin is not None:
        why.append(f"A blur before each decimation changes the FCN's agreement at the unaligned shifts by "
                   f"{fmt_diff(twin.interval, margin=twin.margin)} ({twin.outcome}).")
    if why:
        paragraphs.append("Why (the mechanism): " + " ".join(why))
    perf = [p for p in points if isinstance(p, PerformancePoint) and p.outcome not in (NOT_MEASURED, UNDER_FITS)]
    under = [p for p in points if isinstance(p, PerformancePoint) and p.outcome == UNDER_FITS]
    if perf or under:
        paragraphs.append("The second question, performance (matched pairs on test accuracy): "
                          + " ".join([performance_text(p) for p in perf] + ([_under_fitting_text(under)] if under else [])))
    capacity = [capacity_text(p) for p in points if isinstance(p, CapacityPoint) and p.rows]
    if capacity:
        paragraphs.append("Capacity (the matched pairs trained at several widths, centred): " + " ".join(capacity))
    effects = next((p for p in points if isinstance(p, EffectsPoint) and p.metric == "consistency"), None)
    if effects is not None:
        paragraphs.append(_effects_paragraph(effects, margin))
    claims = {p.id: p.result for p in points if isinstance(p, ClaimPoint)}
    tail = [text for key, render in (("transfer", lambda r: _transfer_text(r, margin)),
                                     ("probe", lambda r: _probe_text(r, margin)))
            if key in claims and (text := render(claims[key]))]
    if tail:
        paragraphs.append(" ".join(tail))
    missing = [m for m in ROLES if m not in models(results)]
    if missing:
        paragraphs.append("Not in this run (not measured): " + ", ".join(missing) + ".")
    return "\n\n".join(paragraphs)
