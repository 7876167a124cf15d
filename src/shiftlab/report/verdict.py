"""The verdict: the answer to the question and the status of claims C1-C7 (DESIGN section 1),
computed from the numbers of a study's ``results.json``.

Nothing here is written in: every status is decided by comparing measured numbers with the named
thresholds below, and every sentence of the answer and the evidence is filled in from them.
Statuses: ``confirmed``, ``refuted``, ``partly`` and ``not measured`` (the results lack what
the claim needs, e.g. no shift range reaching a multiple of the total stride).

Architecture families are read off each model's measured layers (see
:class:`shiftlab.report.aggregate.Group`): the *FCN* of the question is a strided-convolution
trunk with a global-pool head and no pooling layer; *max-pool networks* downsample with plain
``MaxPool2d``. Unless said otherwise, comparisons use the ``centred`` condition (objects always
centred in training), where any invariance must come from the architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from .aggregate import AUGMENTED, CENTRED, Group, aggregate

__all__ = [
    "EXACT_ERROR_TOL",
    "EXACT_CONSISTENCY_TOL",
    "ALIASING_RATIO",
    "CONSISTENCY_MARGIN",
    "PERIODICITY_MARGIN",
    "FLIP_RATE_ZERO",
    "ACCURACY_CLOSE",
    "THRESHOLDS",
    "STATUSES",
    "Claim",
    "Verdict",
    "verdict",
]

#: Relative L2 equivariance error at or below which a float32 layer counts as exactly equivariant
#: (float32 round-off of a conv stack is ~1e-7; 1e-4 leaves room for deep stacks).
EXACT_ERROR_TOL = 1e-4
#: Consistency / agreement within this of 1.0 counts as exactly invariant (every image, every shift).
EXACT_CONSISTENCY_TOL = 1e-6
#: A downsampling layer "aliases" when its unaligned (interior) error exceeds this many times its
#: aligned one (the aligned one floored at :data:`EXACT_ERROR_TOL`).
ALIASING_RATIO = 10.0
#: Consistency (and mean shifted accuracy) differences below this are "about the same"; at or
#: above it they count as an effect.
CONSISTENCY_MARGIN = 0.02
#: Agreement at multiples of the total stride must exceed the agreement at other shifts by this
#: to count as periodic (C2, C4).
PERIODICITY_MARGIN = 0.02
#: A flip rate (1-px neighbours with different predictions) at or below this counts as zero.
FLIP_RATE_ZERO = 1e-3
#: Centred test accuracies within this of each other count as "performing as well" (C7).
ACCURACY_CLOSE = 0.02

THRESHOLDS = {
    "EXACT_ERROR_TOL": (EXACT_ERROR_TOL, "relative L2 error at or below which a layer counts as exactly equivariant (float32)"),
    "EXACT_CONSISTENCY_TOL": (EXACT_CONSISTENCY_TOL, "consistency within this of 1 counts as exactly invariant"),
    "ALIASING_RATIO": (ALIASING_RATIO, "unaligned / aligned interior error above which a downsampling layer aliases"),
    "CONSISTENCY_MARGIN": (CONSISTENCY_MARGIN, "consistency or accuracy difference that counts as an effect (smaller: about the same)"),
    "PERIODICITY_MARGIN": (PERIODICITY_MARGIN, "agreement at multiples of S minus agreement elsewhere that counts as periodic"),
    "FLIP_RATE_ZERO": (FLIP_RATE_ZERO, "flip rate at or below which 1-px shifts count as never changing the prediction"),
    "ACCURACY_CLOSE": (ACCURACY_CLOSE, "centred test accuracy difference within which two networks perform as well"),
}

CONFIRMED, REFUTED, PARTLY, NOT_MEASURED = "confirmed", "refuted", "partly", "not measured"
STATUSES = (CONFIRMED, REFUTED, PARTLY, NOT_MEASURED)

CLAIM_TEXTS = {
    "C1": "A stride-1 convolution is translation equivariant: f(T x) = T f(x).",
    "C2": "Downsampling by s (strided convolution, pooling) is equivariant only to shifts that are multiples of s.",
    "C3": "Global pooling is invariant: f(T x) = f(x).",
    "C4": "A stack of equivariant layers is equivariant; with a global pool at the end the classifier is "
          "invariant to shifts that are multiples of the total stride S.",
    "C5": "Max-pooling creates translation invariance.",
    "C6": "An FCN is a CNN without fully connected layers, and the difference matters: a fully connected head "
          "over a flattened map is not shift invariant, a global pool is.",
    "C7": "FCNs perform as well because their invariance comes from elsewhere: data augmentation, global pooling, "
          "the dataset's own centring.",
}


@dataclass
class Claim:
    """One claim of DESIGN section 1 with its measured status and the numbers behind it."""

    id: str
    text: str
    status: str
    evidence: str
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    """The answer (paragraphs separated by a blank line), the claims and the key numbers behind them."""

    answer: str
    claims: list[Claim]
    numbers: dict = field(default_factory=dict)

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def to_dict(self) -> dict:
        return {
            "answer": self.answer,
            "claims": [c.to_dict() for c in self.claims],
            "numbers": self.numbers,
            "thresholds": {k: v for k, (v, _) in THRESHOLDS.items()},
        }


# ---------------------------------------------------------------------------------------------
# formatting
def _c(v: float | None) -> str:
    """A consistency, agreement or accuracy."""
    return "n/a" if v is None else f"{v:.3f}"


def _e(v: float | None) -> str:
    """An equivariance error."""
    return "n/a" if v is None else ("0" if v == 0 else f"{v:.1e}")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _d(v: float | None) -> str:
    """A signed difference."""
    return "n/a" if v is None else f"{v:+.3f}"


def _names(groups: Iterable[Group]) -> str:
    return ", ".join(dict.fromkeys(g.model for g in groups))


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _max(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _min(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return min(vals) if vals else None


# ---------------------------------------------------------------------------------------------
class _Ctx:
    """The groups of one study and the comparisons the claims share."""

    def __init__(self, results: dict) -> None:
        self.results = results
        self.groups = list(aggregate(results).values())
        conds = list(dict.fromkeys(g.condition for g in self.groups))
        self.ref = CENTRED if CENTRED in conds else conds[0]
        self.has_aug = AUGMENTED in conds and self.ref == CENTRED
        self.models = list(dict.fromkeys(g.model for g in self.groups))

    def in_cond(self, cond: str | None = None, pred: Callable[[Group], bool] = lambda g: True) -> list[Group]:
        cond = self.ref if cond is None else cond
        return [g for g in self.groups if g.condition == cond and pred(g)]

    def get(self, model: str, cond: str) -> Group | None:
        for g in self.groups:
            if g.model == model and g.condition == cond:
                return g
        return None

    def by_model(self) -> dict[str, list[Group]]:
        out: dict[str, list[Group]] = {}
        for g in self.groups:
            out.setdefault(g.model, []).append(g)
        return out

    # paired comparisons ---------------------------------------------------------------------
    def pool_pairs(self, cond: str | None = None, key: str = "canvas.consistency") -> list[tuple[Group, Group, float]]:
        """(max-pool group, strided group, difference of ``key``) with the same head."""
        gs = self.in_cond(cond)
        pairs = []
        for mp in (g for g in gs if g.trunk == "maxpool"):
            for st in (g for g in gs if g.trunk == "strided" and g.head == mp.head):
                a, b = mp.mean(key), st.mean(key)
                if a is not None and b is not None:
                    pairs.append((mp, st, a - b))
        return pairs

    def head_pairs(self, cond: str | None = None, key: str = "canvas.consistency") -> list[tuple[Group, Group, float]]:
        """(global-pool group, FC group, difference of ``key``) with the same trunk."""
        gs = self.in_cond(cond)
        pairs = []
        for fc in (g for g in gs if g.head == "fc"):
            for gp in (g for g in gs if g.global_pool and g.trunk == fc.trunk and g.trunk != "?"):
                a, b = gp.mean(key), fc.mean(key)
                if a is not None and b is not None:
                    pairs.append((gp, fc, a - b))
        return pairs

    def aug_effects(self, key: str = "canvas.consistency") -> list[tuple[str, float]]:
        """(model, augmented minus centred ``key``) for every model trained both ways."""
        if not self.has_aug:
            return []
        out = []
        for m in self.models:
            c, a = self.get(m, CENTRED), self.get(m, AUGMENTED)
            if c is not None and a is not None and c.mean(key) is not None and a.mean(key) is not None:
                out.append((m, a.mean(key) - c.mean(key)))
        return out

    def at_chance(self, g: Group) -> bool:
        """Centred test accuracy within :data:`ACCURACY_CLOSE` of chance: a (near-)constant
        classifier, trivially invariant."""
        acc, k = g.mean("test_accuracy"), g.mean("canvas.n_classes")
        return acc is not None and bool(k) and acc <= 1.0 / k + ACCURACY_CLOSE

    def fcn(self) -> list[Group]:
        return self.in_cond(pred=lambda g: g.fully_convolutional_strided)

    def maxpool(self) -> list[Group]:
        return self.in_cond(pred=lambda g: g.trunk == "maxpool")

    def representative_fcn(self) -> Group | None:
        gs = self.fcn()
        return next((g for g in gs if g.head == "gap"), gs[0] if gs else None)

    def representative_maxpool(self) -> Group | None:
        gs = self.maxpool()
        return next((g for g in gs if g.head == "fc"), gs[0] if gs else None)


# ---------------------------------------------------------------------------------------------
def _c1(ctx: _Ctx) -> Claim:
    rows = []  # model, interior, full (max over conditions of the seed means)
    for model, gs in ctx.by_model().items():
        interior, full = [], []
        for g in gs:
            conv = next((l for l in g.layers if l.kind == "Conv2d" and l.stride == 1.0), None)
            if conv is not None:
                interior.append(conv.mean("aligned_interior_error"))
                full.append(conv.mean("aligned_error"))
        if full:
            rows.append((model, _max(interior), _max(full)))
    claim = Claim("C1", CLAIM_TEXTS["C1"], NOT_MEASURED, "No stride-1 convolution was measured (no per-layer profile).")
    rows = [r for r in rows if r[2] is not None]
    if not rows:
        return claim
    interior = _max(r[1] for r in rows)
    broken = [r for r in rows if r[2] > EXACT_ERROR_TOL]
    exact = [r for r in rows if r[2] <= EXACT_ERROR_TOL]
    claim.numbers = {
        "interior_error_max": interior,
        "full_error_by_model": {m: f for m, _, f in rows},
        "interior_error_by_model": {m: i for m, i, _ in rows},
    }
    where = f"The first stride-1 Conv2d of {len(rows)} model(s)"
    if interior is not None and interior > EXACT_ERROR_TOL:
        claim.status = REFUTED
        claim.evidence = (f"Even away from the border the layer is not equivariant: interior error up to {_e(interior)} "
                          f"(> {_e(EXACT_ERROR_TOL)}) in {where[0].lower() + where[1:]}.")
        return claim
    if broken:
        worst = max(broken, key=lambda r: r[2])
        interior_txt = f"exact in the interior (max error {_e(interior)})" if interior is not None else "no interior measured"
        claim.status = PARTLY if interior is not None else NOT_MEASURED
        claim.evidence = (f"{where}: {interior_txt}, broken at the border (full-map error up to {_e(worst[2])}, "
                          f"{worst[0]}): the padding, not the convolution, breaks it"
                          f" in {', '.join(r[0] for r in broken)}.")
        if exact:
            claim.evidence += (f" {', '.join(r[0] for r in exact)} {'is' if len(exact) == 1 else 'are'} exact on the whole "
                               f"map too (max error {_e(max(r[2] for r in exact))}).")
        return claim
    claim.status = CONFIRMED
    claim.evidence = (f"{where}: exact on the whole map (max error {_e(max(r[2] for r in rows))}) and in the interior "
                      f"(max {_e(interior)}).")
    return claim


def _stride(g: Group) -> int:
    """The total stride S of the periodicity record (or of the run)."""
    p = g.first_run().get("periodicity") or {}
    return int(p.get("stride") or g.mean("total_stride") or 0)


def _periodicity_measurable(g: Group) -> bool:
    """Do the canvas shifts reach a non-zero multiple of the total stride S?"""
    p = g.first_run().get("periodicity") or {}
    s = _stride(g)
    return s > 1 and any(int(dx) != 0 and int(dx) % s == 0 for dx in p.get("dx_values") or [])


def _c2(ctx: _Ctx) -> Claim:
    interior, full = [], []  # (model, layer, aligned, unaligned, ok, which)
    for g in ctx.in_cond():
        for l in g.layers:
            if not l.downsampling:
                continue
            for errors, which, out in ((("aligned_interior_error", "unaligned_interior_error"), "interior", interior),
                                       (("aligned_error", "unaligned_error"), "full map", full)):
                a, u = l.mean(errors[0]), l.mean(errors[1])
                if a is not None and u is not None:
                    ok = a <= EXACT_ERROR_TOL and u >= ALIASING_RATIO * max(a, EXACT_ERROR_TOL)
                    out.append((g.model, l.name, a, u, ok, which))
                    break
    claim = Claim("C2", CLAIM_TEXTS["C2"], NOT_MEASURED,
                  "No downsampling layer with both aligned and unaligned shifts was measured.")
    # Interior errors separate the stride from the padding; layers whose map is too small to have
    # an interior count only when no layer has one (then padding effects are mixed in).
    rows = interior or full
    if not rows:
        return claim
    skipped = len(full) if interior else 0
    ok = [r for r in rows if r[4]]
    per = [g for g in ctx.in_cond() if _periodicity_measurable(g)]
    p_al = _mean(g.mean("periodicity.aligned") for g in per)
    p_un = _mean(g.mean("periodicity.unaligned") for g in per)
    claim.numbers = {
        "layers": len(rows), "layers_ok": len(ok), "layers_without_interior": skipped,
        "aligned_error_max": max(r[2] for r in rows), "unaligned_error_min": min(r[3] for r in rows),
        "periodicity_aligned": p_al, "periodicity_unaligned": p_un,
    }
    text = (f"{len(ok)} of {len(rows)} downsampling layers{' (interior)' if interior else ' (full map: no layer has an interior)'} are exact at shifts that are multiples of their stride "
            f"(max aligned error {_e(max(r[2] for r in ok)) if ok else 'n/a'}) and not at other shifts "
            f"(min unaligned error {_e(min(r[3] for r in ok)) if ok else 'n/a'}, ≥ {ALIASING_RATIO:g}x the aligned one).")
    bad = [r for r in rows if not r[4]]
    if bad:
        text += " Exceptions: " + "; ".join(f"{m} {n} (aligned {_e(a)}, unaligned {_e(u)}, {w})" for m, n, a, u, _, w in bad[:4])
        text += " ..." if len(bad) > 4 else "."
    if skipped:
        text += f" {skipped} deeper downsampling layer(s) with maps too small for an interior are not counted."
    periodic = None
    if p_al is not None and p_un is not None:
        periodic = p_al >= p_un + PERIODICITY_MARGIN
        text += (f" Predictions agree with the unshifted one at multiples of the total stride {_c(p_al)} vs {_c(p_un)} "
                 f"at other shifts (mean over {len(per)} models).")
    claim.evidence = text
    if len(ok) == len(rows) and periodic is not False:
        claim.status = CONFIRMED
    elif not ok:
        claim.status = REFUTED
    else:
        claim.status = PARTLY
    return claim


def _c3(ctx: _Ctx) -> Claim:
    claim = Claim("C3", CLAIM_TEXTS["C3"], NOT_MEASURED, "No network with a global-pool head was measured.")
    by_model = {m: [g for g in gs if g.global_pool] for m, gs in ctx.by_model().items()}
    by_model = {m: gs for m, gs in by_model.items() if gs}
    if not by_model:
        return claim
    trivial = [m for m, gs in by_model.items() if any(ctx.at_chance(g) for g in gs)]
    chance_note = (f" Not counted: {', '.join(trivial)} (test accuracy at chance level: a constant classifier is "
                   f"trivially invariant)." if trivial else "")
    by_model = {m: gs for m, gs in by_model.items() if m not in trivial}
    if not by_model:
        claim.evidence = "Every global-pool network scores at chance level." + chance_note
        claim.numbers = {"at_chance_models": trivial}
        return claim
    circ = {m: _mean(g.mean("circular.consistency") for g in gs) for m, gs in by_model.items()}
    lowest = {m: _min(g.stat("circular.consistency").min for g in gs) for m, gs in by_model.items()}
    exact = [m for m, v in lowest.items() if v is not None and v >= 1 - EXACT_CONSISTENCY_TOL]
    others = [m for m in by_model if m not in exact and circ[m] is not None]
    fc = [g for g in ctx.groups if g.head == "fc" and not ctx.at_chance(g)]
    gp_mean = _mean(g.mean("circular.consistency") for gs in by_model.values() for g in gs)
    fc_mean = _mean(g.mean("circular.consistency") for g in fc)
    claim.numbers = {"circular_consistency": circ, "circular_consistency_min": lowest, "exact_models": exact,
                     "at_chance_models": trivial, "global_pool_mean": gp_mean, "fc_mean": fc_mean}
    rest = ", ".join(f"{m} {_c(circ[m])}" for m in others)
    if exact:
        claim.status = CONFIRMED
        claim.evidence = (f"{', '.join(exact)} reach{'es' if len(exact) == 1 else ''} circular consistency "
                          f"{min(lowest[m] for m in exact):.6f} in every seed and condition: a global pool over exactly "
                          f"equivariant features is exactly invariant.")
        if others:
            claim.evidence += (f" The other global-pool networks reach {rest}: a network is only as invariant as the "
                               f"features before its pool.")
        claim.evidence += chance_note
        return claim
    best = max((m for m in circ if circ[m] is not None), key=lambda m: circ[m], default=None)
    claim.evidence = (f"No global-pool network is exactly invariant to circular shifts (best {best} "
                      f"{_c(circ.get(best))}, lowest seed {_c(lowest.get(best))}; all: {rest or 'n/a'}).")
    claim.evidence += chance_note
    if gp_mean is not None and fc_mean is not None and gp_mean >= fc_mean + CONSISTENCY_MARGIN:
        claim.status = PARTLY
        claim.evidence += (f" Global pooling still helps: circular consistency {_c(gp_mean)} vs {_c(fc_mean)} with FC heads;"
                           f" the features before the pool are not equivariant enough.")
    else:
        claim.status = REFUTED
        if fc_mean is not None:
            claim.evidence += f" FC heads reach {_c(fc_mean)}: the pool brings no measurable invariance."
    return claim


def _c4(ctx: _Ctx) -> Claim:
    claim = Claim("C4", CLAIM_TEXTS["C4"], NOT_MEASURED, "No network with a global-pool head was measured.")
    gp = [g for g in ctx.groups if g.global_pool]
    if not gp:
        return claim
    gp = [g for g in gp if _periodicity_measurable(g)]
    if not gp:
        p = ctx.groups[0].first_run().get("periodicity") or {}
        claim.evidence = (f"The canvas shifts (dx in {min(p.get('dx_values') or [0])}..{max(p.get('dx_values') or [0])}) "
                          f"reach no non-zero multiple of the total stride S = {_stride(ctx.groups[0])}; raise max_shift "
                          f"to at least S to test it.")
        return claim
    al = _mean(g.mean("periodicity.aligned") for g in gp)
    un = _mean(g.mean("periodicity.unaligned") for g in gp)
    exact_al = all((g.stat("periodicity.aligned").min or 0) >= 1 - EXACT_CONSISTENCY_TOL for g in gp)
    s = _stride(gp[0])
    claim.numbers = {"stride": s, "aligned": al, "unaligned": un, "aligned_exact": exact_al,
                     "by_group": {f"{g.model}/{g.condition}": [g.mean("periodicity.aligned"), g.mean("periodicity.unaligned")]
                                  for g in gp}}
    per_model = "; ".join(f"{g.model} {_c(g.mean('periodicity.aligned'))} vs {_c(g.mean('periodicity.unaligned'))}"
                          for g in gp if g.condition == ctx.ref)
    base = (f"Agreement with the unshifted prediction under canvas shifts, global-pool networks: {_c(al)} at multiples of "
            f"S = {s} vs {_c(un)} at other shifts (mean over {len(gp)} model x condition groups; {ctx.ref}: {per_model}).")
    if exact_al:
        claim.status = CONFIRMED
        claim.evidence = base + " Invariant at every multiple of S" + (
            ", and at the other shifts too." if un is not None and un >= 1 - EXACT_CONSISTENCY_TOL
            else f"; not at the other shifts ({_c(un)}): invariance only on the subgroup.")
    elif al is not None and un is not None and al >= un + PERIODICITY_MARGIN:
        claim.status = PARTLY
        claim.evidence = base + (" Closer to invariant at multiples of S than elsewhere, but not exactly: the layers are "
                                 "not exactly equivariant (padding, canvas border).")
    else:
        claim.status = REFUTED
        claim.evidence = base + " No advantage at multiples of S: the stack is not equivariant enough for the argument to hold."
    return claim


def _c5(ctx: _Ctx) -> Claim:
    claim = Claim("C5", CLAIM_TEXTS["C5"], NOT_MEASURED,
                  "The results hold no max-pool and strided-convolution networks to compare.")
    pairs = ctx.pool_pairs()
    mp = ctx.maxpool()
    if not pairs or not mp:
        return claim
    diff = _mean(d for _, _, d in pairs)
    flip = _mean(g.mean("canvas.flip_rate") for g in mp)
    mp_cons = _mean(g.mean("canvas.consistency") for g in mp)
    claim.numbers = {"consistency_gain": diff, "maxpool_flip_rate": flip, "maxpool_consistency": mp_cons,
                     "pairs": {f"{a.model} vs {b.model}": d for a, b, d in pairs}}
    compare = "; ".join(f"{a.model} {_c(a.mean('canvas.consistency'))} vs {b.model} {_c(b.mean('canvas.consistency'))}"
                        for a, b, _ in pairs)
    base = f"Trained on {ctx.ref} objects, canvas consistency with the same head: {compare} (mean gain {_d(diff)})."
    if diff < CONSISTENCY_MARGIN:
        claim.status = REFUTED
        claim.evidence = base + f" Max-pooling brings no measurable invariance (gain < {CONSISTENCY_MARGIN:g})."
        return claim
    flip_txt = f"a 1-pixel shift changes {_pct(flip)} of the max-pool networks' predictions"
    if flip is not None and flip <= FLIP_RATE_ZERO:
        claim.status = CONFIRMED
        claim.evidence = base + f" And {flip_txt}."
    else:
        claim.status = PARTLY
        claim.evidence = base + f" But the invariance is local and partial: {flip_txt}."
    return claim


def _c6(ctx: _Ctx) -> Claim:
    claim = Claim("C6", CLAIM_TEXTS["C6"], NOT_MEASURED,
                  "The results hold no FC-head and global-pool networks with the same trunk to compare.")
    pairs = [p for cond in dict.fromkeys(g.condition for g in ctx.groups) for p in ctx.head_pairs(cond)]
    if not pairs:
        return claim
    wins = [p for p in pairs if p[2] >= CONSISTENCY_MARGIN]
    ref_pairs = [p for p in pairs if p[0].condition == ctx.ref] or pairs
    claim.numbers = {"pairs": {f"{a.model} vs {b.model} ({a.condition})": d for a, b, d in pairs},
                     "global_pool_wins": len(wins), "n_pairs": len(pairs)}
    compare = "; ".join(
        f"{b.model} {_c(b.mean('canvas.consistency'))} (worst-case acc. {_c(b.mean('canvas.worst_case_accuracy'))}) vs "
        f"{a.model} {_c(a.mean('canvas.consistency'))} ({_c(a.mean('canvas.worst_case_accuracy'))})"
        for a, b, _ in ref_pairs)
    claim.evidence = (f"Canvas consistency, same trunk, FC head vs global pool ({ref_pairs[0][0].condition}): {compare}. "
                      f"The global pool is more consistent by ≥ {CONSISTENCY_MARGIN:g} in {len(wins)} of {len(pairs)} "
                      f"comparisons (all conditions).")
    claim.status = CONFIRMED if len(wins) == len(pairs) else (REFUTED if not wins else PARTLY)
    return claim


def _sources(ctx: _Ctx, key: str) -> dict[str, float | None]:
    return {
        "augmentation": _mean(d for _, d in ctx.aug_effects(key)),
        "global pooling": _mean(d for _, _, d in ctx.head_pairs(key=key)),
        "max-pooling": _mean(d for _, _, d in ctx.pool_pairs(key=key)),
    }


_SOURCE_PHRASE = {
    "augmentation": "training with random translations (vs centred)",
    "global pooling": "a global-pool head (vs an FC head)",
    "max-pooling": "max-pooling (vs stride-2 convolution)",
}


def _c7(ctx: _Ctx) -> Claim:
    claim = Claim("C7", CLAIM_TEXTS["C7"], NOT_MEASURED,
                  "The results hold no fully convolutional and max-pool networks to compare.")
    fcn, mp = ctx.representative_fcn(), ctx.representative_maxpool()
    cons = _sources(ctx, "canvas.consistency")
    acc = _sources(ctx, "canvas.mean_accuracy")
    measured = {k: v for k, v in cons.items() if v is not None}
    if fcn is None or mp is None or fcn.mean("test_accuracy") is None or mp.mean("test_accuracy") is None or not measured:
        return claim
    a_f, a_m = fcn.mean("test_accuracy"), mp.mean("test_accuracy")
    as_well = abs(a_f - a_m) <= ACCURACY_CLOSE
    largest = max(measured, key=lambda k: measured[k])
    elsewhere = largest != "max-pooling" and measured[largest] >= CONSISTENCY_MARGIN
    shifted_f, shifted_m = fcn.mean("canvas.mean_accuracy"), mp.mean("canvas.mean_accuracy")
    claim.numbers = {"fcn": fcn.model, "maxpool": mp.model, "fcn_test_accuracy": a_f, "maxpool_test_accuracy": a_m,
                     "consistency_gain": cons, "mean_shifted_accuracy_gain": acc,
                     "largest_source": largest if measured[largest] >= CONSISTENCY_MARGIN else None,
                     "fcn_mean_shifted_accuracy": shifted_f, "maxpool_mean_shifted_accuracy": shifted_m}
    gains = "; ".join(f"{_SOURCE_PHRASE[k]} {_d(v)} ({_d(acc[k])})" for k, v in measured.items())
    largest_txt = (f"the largest is {largest}" if measured[largest] >= CONSISTENCY_MARGIN
                   else f"none reaches {CONSISTENCY_MARGIN:g}")
    text = (f"Centred test accuracy: {fcn.model} {_c(a_f)} vs {mp.model} {_c(a_m)} "
            f"({'within' if as_well else 'more than'} {ACCURACY_CLOSE:g}: {'they perform as well' if as_well else 'they do not perform as well'}). "
            f"Mean gain in canvas consistency (and in mean shifted accuracy) from {gains}; {largest_txt}.")
    if shifted_f is not None and shifted_m is not None:
        text += (f" The centred test split hides the difference: over shifted positions mean accuracy is {_c(shifted_f)} "
                 f"({fcn.model}) and {_c(shifted_m)} ({mp.model}).")
    claim.evidence = text
    claim.status = CONFIRMED if as_well and elsewhere else (REFUTED if not as_well and not elsewhere else PARTLY)
    return claim


# ---------------------------------------------------------------------------------------------
def _answer(ctx: _Ctx, claims: dict[str, Claim]) -> tuple[str, dict]:
    fcn, mp = ctx.fcn(), ctx.maxpool()
    numbers: dict = {"condition": ctx.ref}
    if not fcn or not mp:
        return ("The results hold no " + ("fully convolutional" if not fcn else "max-pool") +
                " network, so the question cannot be answered from them.", numbers)
    c_f = _mean(g.mean("canvas.consistency") for g in fcn)
    c_m = _mean(g.mean("canvas.consistency") for g in mp)
    f_f = _mean(g.mean("canvas.flip_rate") for g in fcn)
    f_m = _mean(g.mean("canvas.flip_rate") for g in mp)
    diff = c_f - c_m
    numbers.update(fcn_consistency=c_f, maxpool_consistency=c_m, consistency_difference=diff,
                   fcn_flip_rate=f_f, maxpool_flip_rate=f_m)
    if diff <= -CONSISTENCY_MARGIN:
        verdict, than, lead = "less", "than", "No."
    elif diff >= CONSISTENCY_MARGIN:
        verdict, than, lead = "more", "than", "Yes, and more so."
    else:
        verdict, than, lead = "about as", "as", "Largely yes: they are about equally invariant."
    numbers["fcn_is"] = verdict
    parts = [
        f"{lead} Trained on {ctx.ref} objects, the fully convolutional networks ({_names(fcn)}) are {verdict} "
        f"translation invariant {than} the max-pooling networks ({_names(mp)}): consistency under translations of the "
        f"object on the canvas {_c(c_f)} vs {_c(c_m)} (difference {_d(diff)})."
    ]
    chance = [g.model for g in fcn + mp if ctx.at_chance(g)]
    if chance:
        parts.append(f"Caution: {', '.join(chance)} score at chance level on centred test data; a constant classifier "
                     f"is trivially invariant, so these consistencies say nothing about the architecture.")
    flips = [(n, f) for n, f in (("the FCNs", f_f), ("the max-pool networks", f_m)) if f is not None]
    if flips and any(f > FLIP_RATE_ZERO for _, f in flips):
        parts.append("Neither kind is truly invariant: a 1-pixel shift changes "
                     + " and ".join(f"{_pct(f)} of the predictions of {n}" for n, f in flips) + ".")
    exact = claims["C3"].numbers.get("exact_models") if claims["C3"].status == CONFIRMED else None
    if exact:
        parts.append(f"Exactly invariant to circular shifts (consistency 1 in every seed): {', '.join(exact)}.")
    why: list[str] = []
    c7 = claims["C7"].numbers
    if c7:
        a_f, a_m = c7["fcn_test_accuracy"], c7["maxpool_test_accuracy"]
        as_well = abs(a_f - a_m) <= ACCURACY_CLOSE
        numbers.update(fcn_test_accuracy=a_f, maxpool_test_accuracy=a_m, performs_as_well=as_well,
                       largest_source=c7["largest_source"])
        why.append(f"On centred test images {c7['fcn']} scores {_c(a_f)} and {c7['maxpool']} {_c(a_m)}"
                     + (": they perform as well, and a centred test set does not ask for invariance."
                        if as_well else f": here they do not perform as well (difference {_d(a_f - a_m)})."))
        shifted_f, shifted_m = c7.get("fcn_mean_shifted_accuracy"), c7.get("maxpool_mean_shifted_accuracy")
        if as_well and shifted_f is not None and shifted_m is not None:
            why.append(f"Over shifted positions their mean accuracy is {_c(shifted_f)} and {_c(shifted_m)}.")
        gains = {k: v for k, v in c7["consistency_gain"].items() if v is not None}
        if gains:
            ranked = sorted(gains, key=lambda k: -gains[k])
            top = ranked[0] if gains[ranked[0]] >= CONSISTENCY_MARGIN else None
            why.append("Where the invariance comes from, as measured: " + "; ".join(
                f"{_SOURCE_PHRASE[k]} changes canvas consistency by {_d(gains[k])}" for k in ranked)
                + (f". The largest source is {top}" + (", not max-pooling." if top != "max-pooling" else ".")
                   if top else f". None of them changes it by {CONSISTENCY_MARGIN:g} or more."))
    return " ".join(parts) + ("\n\n" + " ".join(why) if why else ""), numbers


def verdict(results: dict) -> Verdict:
    """The answer and claims C1-C7 computed from a ``results.json`` dict (no figures needed).

    Example (on a finished study's run directory)::

        v = verdict(json.loads(Path("runs/study/results.json").read_text()))
        print(v.answer)
        print([(c.id, c.status) for c in v.claims])
    """
    ctx = _Ctx(results)
    claims = {c.id: c for c in (f(ctx) for f in (_c1, _c2, _c3, _c4, _c5, _c6, _c7))}
    answer, numbers = _answer(ctx, claims)
    numbers["sources"] = {
        "canvas consistency": _sources(ctx, "canvas.consistency"),
        "mean shifted accuracy": _sources(ctx, "canvas.mean_accuracy"),
    }
    return Verdict(answer=answer, claims=list(claims.values()), numbers=numbers)
