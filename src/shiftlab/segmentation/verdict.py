"""The segmentation study's answer, computed from its cells and comparisons: is a segmentation FCN
shift equivariant, at which shifts, where does it break, and what restores it at what cost in
mIoU; and claim C10 (``docs/segmentation.md``, "The verdict")."""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.report.claims.result import CONFIRMED, INCONCLUSIVE, PARTLY, REFUTED, ClaimResult
from shiftlab.report.fmt import fmt_count, fmt_diff, fmt_interval
from shiftlab.stats import decide

from .analysis import BASELINE, SegCell, SegResults, decide_level

__all__ = ["C10_TEXT", "LOGITS_EXACT", "SegVerdict", "c10", "logits_exact", "seg_verdict"]

#: Claim C10 as the answers state it.
C10_TEXT = "A fully convolutional segmentation network (FCN, U-Net) is translation equivariant: masks move with the input."
#: The matched pairs that isolate a part of the U-Net: (a, b, the part).
_PARTS = (("unet_aps_transposed", "unet_maxpool_transposed", "the encoder's downsampling"),
          ("unet_aps_aps", "unet_aps_transposed", "the decoder's upsampling"))


@dataclass(frozen=True)
class SegVerdict:
    """The answer's sentences, each computed from the results (HTML-free text).

    Attributes:
        equivariant: whether the baseline U-Net is equivariant, at which shifts, with numbers.
        where: which part breaks it (encoder, decoder, border), from matched comparisons; then, per
            U-Net, the first layer that adds error in its per-layer profile and the error that
            reaches its logits (``docs/segmentation.md``, "The verdict").
        restores: which U-Nets are exact or closest, and their cost in mIoU.
    """

    equivariant: str
    where: list[str]
    restores: list[str]


def _name(model: str) -> str:
    down, up = model.removeprefix("unet_").split("_")
    return f"{model} ({down} down, {up} up)"


def _baseline(results: SegResults) -> SegCell | None:
    condition = results.config.conditions[0]
    return results.cell(BASELINE, condition) or results.cell(results.config.models[0], condition)


def _equivariant(results: SegResults, base: SegCell) -> str:
    s, m = results.config.stride, results.config.margin
    a = base.agreement
    if base.exact:
        return (f"Yes, exactly: {_name(base.model)}, {base.condition}, agreed with its own shifted prediction at every "
                f"pixel of every test scene at every shift, in every seed.")
    outcome = decide_level(a["object_massc"], 1.0, m)
    gap = a["object_gap"]
    gap_word = {"more": "more", "more, size unresolved": "more (by an unresolved amount)",
                "about the same": "about as much", "inconclusive": "no clear difference"}.get(decide(gap, m), "less")
    opening = "No" if outcome in ("less", "less, size unresolved") else f"Within the margin {m} of it, not exactly"
    return (f"{opening}: {_name(base.model)}, {base.condition}, agrees with its own shifted prediction at "
            f"{fmt_interval(a['object_massc'])} of the pixels that either prediction labels an object ({outcome} than 1 "
            f"against the margin {m}; mASSC over all pixels, background included, {fmt_interval(a['massc'])}). At the "
            f"multiples of its total stride {s} px the object agreement is {fmt_interval(a['object_aligned'])}, at "
            f"unaligned shifts of the same distance {fmt_interval(a['object_unaligned'])}: {gap_word} at the aligned "
            f"shifts, a difference of {fmt_diff(gap, margin=m)}; at 1-{s // 2} px {fmt_interval(a['object_near'])}.")


def _where(results: SegResults) -> list[str]:
    lines = []
    conditions = results.config.conditions
    for a, b, part in _PARTS:
        for cond in conditions:
            c = results.comparison(a, b, cond, "object_massc")
            if c is not None:
                lines.append(f"{part} ({cond}): {a} vs {b}, object agreement {c.outcome}, "
                             f"{fmt_diff(c.interval, margin=c.margin)}")
    if "circular" in conditions and len(conditions) > 1:
        for model in ("unet_aps_aps", BASELINE):
            c = results.comparison(f"{model}|circular", f"{model}|{conditions[0]}", "circular", "object_massc")
            if c is not None:
                lines.append(f"the border (zero padding and the canvas edge): {model} with circular padding and "
                             f"circular shifts vs {conditions[0]}, object agreement {c.outcome}, "
                             f"{fmt_diff(c.interval, margin=c.margin)}")
    return lines


#: A relative error of the logits at most this is float32 rounding: the network is exact at its output.
LOGITS_EXACT = 1e-5


def logits_exact(layers: list[dict]) -> bool:
    """Whether a per-layer profile's last map (the logits, at stride 1: every shift aligned there)
    has a relative error of at most :data:`LOGITS_EXACT`."""
    out = layers[-1]["aligned_error"]
    return out is not None and out <= LOGITS_EXACT


def _first_breaks(results: SegResults) -> list[str]:
    """Per U-Net (seed 0's profile, circular condition when measured: no border in the reference):
    the first layer that adds error, its cause, and the relative error that reaches the logits."""
    cond = "circular" if "circular" in results.config.conditions else results.config.conditions[-1]
    lines = []
    for record in results.runs:
        if record.condition != cond or not record.layers:
            continue
        first = next((la for la in record.layers if la["origin"].startswith("breaks here")), None)
        out = record.layers[-1]["aligned_error"]  # the logits are at stride 1: every shift is aligned there
        cause = f"({first['part']}, {first['origin'].removeprefix('breaks here: ')})" if first else ""
        if first is None:
            where = "adds no error at any layer"
        elif logits_exact(record.layers):
            where = (f"departs from a band-limited shift first at {first['name']} {cause}, and later layers undo it "
                     "(exact at the logits: an APS-D map is the other phase of its input, which APS-U puts back)")
        else:
            where = f"first adds error at {first['name']} {cause}"
        lines.append(f"per layer ({cond}, seed 0): {record.model} {where}; the relative error of its logits over the "
                     f"profile's shifts {'n/a' if out is None else f'{out:.2g}'}")
    return lines


#: A last-epoch training loss at least this many times another's: the two did not fit the training
#: scenes alike in the budget, so part of an mIoU difference may be fit, not architecture.
FIT_RATIO = 2.0


def _fit_note(loss: float, base_loss: float) -> str:
    if base_loss > 0 and loss >= FIT_RATIO * base_loss:
        return (f" ({loss / base_loss:.1f}x: it fits the training scenes less in the budget, so part of the mIoU "
                "difference may be fit rather than architecture)")
    return ""


def _restores(results: SegResults) -> list[str]:
    lines = []
    for cond in results.config.conditions:
        cells = [c for c in results.cells if c.condition == cond]
        exact = [c.model for c in cells if c.exact]
        best = max(cells, key=lambda c: c.agreement["object_massc"].estimate)
        base = results.cell(BASELINE, cond)
        head = (f"{cond}: exactly equivariant: {', '.join(exact)}" if exact
                else f"{cond}: no U-Net is exactly equivariant; the most consistent is {best.model} "
                     f"(object agreement {fmt_interval(best.agreement['object_massc'])})")
        target = next((results.cell(m, cond) for m in exact), None) or best
        cost = results.comparison(target.model, BASELINE, cond, "miou") if base and target.model != BASELINE else None
        if cost is not None:
            assert base is not None  # cost is only compared with a baseline cell
            head += (f"; its mIoU {fmt_interval(target.miou)} against the U-Net's {fmt_interval(base.miou)}: "
                     f"{cost.outcome}, {fmt_diff(cost.interval, margin=cost.margin)}, at the budget of "
                     f"{fmt_count(results.config.epochs, 'epoch')}, whose last training loss is {target.train_loss:.3g} against "
                     f"{base.train_loss:.3g}{_fit_note(target.train_loss, base.train_loss)}")
        lines.append(head)
    return lines


def seg_verdict(results: SegResults) -> SegVerdict:
    """The answer of ``results`` (module notes)."""
    base = _baseline(results)
    if base is None:
        raise ValueError("the results hold no cell of the study's first condition")
    return SegVerdict(_equivariant(results, base), _where(results) + _first_breaks(results), _restores(results))


def c10(results: SegResults) -> ClaimResult:
    """Claim C10: ``confirmed`` when the baseline U-Net is exactly equivariant (or its object
    agreement within the margin of 1) in every condition; ``partly`` when it is not but some U-Net is exactly
    equivariant; ``refuted`` when no U-Net is and the baseline is clearly below 1; else
    ``inconclusive``."""
    m = results.config.margin
    bases = [c for c in (results.cell(BASELINE, cond) for cond in results.config.conditions) if c is not None]
    exact = [c for c in results.cells if c.exact]
    outcomes = {f"{c.model}|{c.condition}:object_massc vs 1": decide_level(c.agreement["object_massc"], 1.0, m)
                for c in bases}
    intervals = {f"{c.model}|{c.condition}:{k}": c.agreement[k] for c in bases for k in ("massc", "object_massc")}
    numbers: dict[str, float | None] = {f"{c.model}|{c.condition}:exact": float(c.exact) for c in results.cells}
    notes = tuple(f"exact: {c.model} ({c.condition})" for c in exact)
    if bases and all(c.exact or outcomes[f"{c.model}|{c.condition}:object_massc vs 1"] == "about the same" for c in bases):
        status = CONFIRMED
    elif exact:
        status = PARTLY
    elif bases and all(o in ("less", "less, size unresolved") for o in outcomes.values()):
        status = REFUTED
    else:
        status = INCONCLUSIVE
    return ClaimResult("C10", status, numbers, intervals, outcomes, notes)
