"""Per model x condition statistics over seeds of every metric in ``results.json``.

Every run of :mod:`shiftlab.study.schema` is flattened into

- **scalars**: every number reachable through nested objects, keyed by its dotted path
  (``"test_accuracy"``, ``"canvas.consistency"``, ``"periodicity.aligned"``, ...);
- **series**: every list of numbers (``"accuracy_by_distance"``, ``"canvas.accuracy_by_shift"``,
  ``"periodicity.agreement_by_dx"``, ``"periodicity.residue_agreement"``, ...);
- **layers**: the per-layer equivariance profile (``equivariance.layers``), matched by name.

A :class:`Group` holds, for one (model, condition), the :class:`Stat` (mean, std, min, max over
seeds; ``None`` values are left out) of each. Series that do not line up across seeds (different
lengths, or per-shift values over different shift samples) are left out and named in
``Group.dropped``. ``std`` is the sample standard deviation
(``ddof=1``) and 0 for a single seed.

The architecture family of a group (max-pool trunk or strided trunk, FC or global-pool head) is
read off its measured layers (:attr:`Group.trunk`, :attr:`Group.head`); the model name is used
only when a run has no layer profile.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CENTRED",
    "AUGMENTED",
    "Stat",
    "SeriesStat",
    "LayerStat",
    "Group",
    "aggregate",
    "model_order",
    "condition_order",
    "downsampling_flags",
]

CENTRED = "centred"
AUGMENTED = "augmented"
_CONDITION_ORDER = (CENTRED, AUGMENTED)
_LAYER_FIELDS = (
    "aligned_error", "aligned_error_max", "unaligned_error", "unaligned_error_max",
    "aligned_interior_error", "unaligned_interior_error",
)
_GLOBAL_POOLS = {"AdaptiveAvgPool2d": "gap", "AdaptiveMaxPool2d": "gmp"}


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: object) -> float | None:
    """A number of results.json as a float: ``None`` stays ``None``; the strings ``"inf"``,
    ``"-inf"`` and ``"nan"`` (how :func:`shiftlab.io.json_safe` writes non-finite floats) are
    read back; anything else is not a number (``None``)."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str):
        return _NON_FINITE.get(v.strip().lower())
    return None


@dataclass(frozen=True)
class Stat:
    """Summary of one number over seeds (``None`` fields when no seed has a value)."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[object]) -> Stat:
        vals = [x for x in map(_number, values) if x is not None and not math.isnan(x)]
        if not vals:
            return cls(None, None, None, None, 0)
        arr = np.asarray(vals, dtype=float)
        with np.errstate(invalid="ignore"):  # inf - inf: the std of an infinite value is NaN
            std = float(arr.std(ddof=1)) if len(vals) > 1 else 0.0
        return cls(float(arr.mean()), std, float(arr.min()), float(arr.max()), len(vals))


@dataclass(frozen=True)
class SeriesStat:
    """Element-wise summary of a list of numbers over seeds (NaN where undefined)."""

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    n: int

    @classmethod
    def of(cls, arrays: list[np.ndarray]) -> SeriesStat:
        """Requires arrays of one shape (see :func:`_series_stats`)."""
        stack = np.stack(arrays).astype(float)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as intended
            mean = np.nanmean(stack, axis=0)
            std = np.nanstd(stack, axis=0, ddof=1) if len(arrays) > 1 else np.zeros_like(mean)
            lo, hi = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        return cls(mean, std, lo, hi, len(arrays))


@dataclass(frozen=True)
class LayerStat:
    """One layer of the equivariance profile: identity and error statistics over seeds."""

    name: str
    kind: str
    shape: tuple[int, ...]
    stride: float
    downsampling: bool
    errors: dict[str, Stat]

    def mean(self, key: str) -> float | None:
        return self.errors[key].mean


def _numeric_array(value: list) -> np.ndarray | None:
    """A list (or nested lists) of numbers/None as a float array, or None if it is not numeric."""
    def ok(v: object) -> bool:
        if isinstance(v, list):
            return all(ok(x) for x in v)
        return v is None or _number(v) is not None

    def conv(v: object) -> object:
        return [conv(x) for x in v] if isinstance(v, list) else _number(v)

    if not value or not ok(value):
        return None
    try:
        arr = np.array(conv(value), dtype=float)
    except ValueError:  # ragged
        return None
    return arr


def _flatten(obj: dict, prefix: str, scalars: dict, series: dict) -> None:
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if _number(value) is not None:
            scalars[path] = _number(value)
        elif value is None:
            scalars.setdefault(path, None)
        elif isinstance(value, dict):
            _flatten(value, f"{path}.", scalars, series)
        elif isinstance(value, list) and key != "layers":
            arr = _numeric_array(value)
            if arr is not None:
                series[path] = arr


def _stride_value(stride: object) -> float:
    if isinstance(stride, (list, tuple)) and stride:
        return float(max(float(s) for s in stride))
    return float(stride) if _is_number(stride) else 1.0


def downsampling_flags(layers: list[dict]) -> list[bool]:
    """Which layers downsample: an integer stride larger than the last integer stride before it.

    Layers whose (shape-inferred) stride is not an integer, such as a 2x2 max over a stride-1
    window that trims one pixel, change the size without subsampling and are not counted; nor
    are global pools (a 1x1 output).
    """
    flags, current = [], 1.0
    for layer in layers:
        s = _stride_value(layer.get("stride"))
        is_int = abs(s - round(s)) < 1e-6
        spatial = list(layer.get("shape") or [])[-2:]
        if layer.get("kind") in _GLOBAL_POOLS or spatial == [1, 1]:  # a global pool, not a stride-s subsampling
            flags.append(False)
            continue
        flags.append(bool(is_int and round(s) > current))
        if is_int:
            current = max(current, float(round(s)))
    return flags


@dataclass
class Group:
    """All seeds of one (model, condition)."""

    model: str
    condition: str
    runs: list[dict] = field(repr=False)
    scalars: dict[str, Stat] = field(repr=False)
    series: dict[str, SeriesStat] = field(repr=False)
    layers: list[LayerStat] = field(repr=False)
    #: series left out because the seeds do not line up (different lengths or shift sets)
    dropped: list[str] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [r["seed"] for r in self.runs]

    def stat(self, key: str) -> Stat:
        """The :class:`Stat` of a dotted scalar path (an empty Stat if absent)."""
        return self.scalars.get(key, Stat(None, None, None, None, 0))

    def mean(self, key: str) -> float | None:
        return self.stat(key).mean

    def first_run(self) -> dict:
        """The run with the lowest seed."""
        return self.runs[0]

    # --- architecture family, read off the measured layers -------------------------------
    def _kinds(self) -> list[str]:
        eq = self.first_run().get("equivariance") or {}
        kinds = [l.get("kind", "") for l in eq.get("layers") or []]
        return kinds + [s.get("kind", "") for s in eq.get("skipped") or []]

    @property
    def head(self) -> str:
        """``"fc"`` (a Linear layer), ``"gap"`` / ``"gmp"`` (global average / max pool) or ``"?"``."""
        kinds = self._kinds()
        if "Linear" in kinds:
            return "fc"
        for kind, head in _GLOBAL_POOLS.items():
            if kind in kinds:
                return head
        for suffix in ("fc", "gap", "gmp"):
            if self.model.endswith("_" + suffix):
                return suffix
        return "?"

    @property
    def global_pool(self) -> bool:
        return self.head in ("gap", "gmp")

    @property
    def trunk(self) -> str:
        """How the trunk downsamples: ``"maxpool"`` (plain ``MaxPool2d``), ``"strided"`` (strided
        convolutions only), ``"other"`` (BlurPool, APS, ...) or ``"?"`` without a layer profile."""
        down = [l for l in self.layers if l.downsampling]
        if down:
            kinds = {l.kind for l in down}
            if kinds == {"Conv2d"}:
                return "strided"
            if kinds == {"MaxPool2d"}:
                return "maxpool"
            return "other"
        if self.model.startswith("maxpool"):
            return "maxpool"
        if self.model.startswith(("strided", "fcn")):
            return "strided"
        return "?"

    @property
    def fully_convolutional_strided(self) -> bool:
        """The FCN of the question: strided convolutions, no pooling, a global-pool head."""
        return self.trunk == "strided" and self.global_pool


def _layer_stats(runs: list[dict], model: str, condition: str) -> list[LayerStat]:
    profiles = [(r.get("equivariance") or {}).get("layers") or [] for r in runs]
    base = profiles[0]
    names = [l.get("name") for l in base]
    for p in profiles[1:]:
        if [l.get("name") for l in p] != names:
            raise ValueError(f"{model}/{condition}: the per-layer profiles differ across seeds; the runs are not comparable")
    flags = downsampling_flags(base)
    out = []
    for i, layer in enumerate(base):
        errors = {k: Stat.of(p[i].get(k) for p in profiles) for k in _LAYER_FIELDS}
        out.append(LayerStat(
            name=str(layer.get("name")),
            kind=str(layer.get("kind", "")),
            shape=tuple(layer.get("shape") or ()),
            stride=_stride_value(layer.get("stride")),
            downsampling=flags[i],
            errors=errors,
        ))
    return out


def _group(model: str, condition: str, runs: list[dict]) -> Group:
    runs = sorted(runs, key=lambda r: r["seed"])
    flat = []
    for r in runs:
        scalars: dict = {}
        series: dict = {}
        _flatten({k: v for k, v in r.items() if k not in ("history", "equivariance")}, "", scalars, series)
        eq = r.get("equivariance") or {}
        for k in ("output_eq_t_db", "n_images"):
            if _number(eq.get(k)) is not None:
                scalars[f"equivariance.{k}"] = _number(eq.get(k))
        flat.append((scalars, series))
    scalar_keys = list(dict.fromkeys(k for s, _ in flat for k in s))
    series_keys = list(dict.fromkeys(k for _, s in flat for k in s))
    scalars = {k: Stat.of(s.get(k) for s, _ in flat) for k in scalar_keys}
    series, dropped = _series_stats(series_keys, [s for _, s in flat])
    return Group(model, condition, runs, scalars, series, _layer_stats(runs, model, condition), dropped)


def _series_stats(keys: list[str], per_run: list[dict[str, np.ndarray]]) -> tuple[dict[str, SeriesStat], list[str]]:
    """Element-wise stats of the series that line up across seeds; the names of those that do not.

    A series is averaged only if every seed has it with the same shape, and a per-shift series
    (``X.accuracy_by_shift``) only if the seeds used the same shifts (``X.shifts``): circular
    shifts, for instance, may be a different random sample per seed.
    """
    same_shape = {k for k in keys if len({r[k].shape for r in per_run if k in r}) == 1
                  and all(k in r for r in per_run)}
    out, dropped = {}, []
    for k in keys:
        ok = k in same_shape
        if ok and k.endswith(".accuracy_by_shift"):
            sk = k[: -len("accuracy_by_shift")] + "shifts"
            ok = sk in same_shape and all(np.array_equal(per_run[0][sk], r[sk]) for r in per_run)
        if ok and k.endswith(".shifts"):
            ok = all(np.array_equal(per_run[0][k], r[k]) for r in per_run)
        if ok:
            out[k] = SeriesStat.of([r[k] for r in per_run])
        else:
            dropped.append(k)
    return out, dropped


def model_order(models: Iterable[str]) -> list[str]:
    """Zoo registry order first, then the other names in order of appearance."""
    models = list(dict.fromkeys(models))
    try:
        from shiftlab.zoo import names

        known = [m for m in names() if m in models]
    except Exception:  # pragma: no cover - the zoo is part of the package
        known = []
    return known + [m for m in models if m not in known]


def condition_order(conditions: Iterable[str]) -> list[str]:
    """``centred``, ``augmented``, then the others alphabetically."""
    conditions = set(conditions)
    return [c for c in _CONDITION_ORDER if c in conditions] + sorted(conditions - set(_CONDITION_ORDER))


def aggregate(results: dict) -> dict[tuple[str, str], Group]:
    """Group the runs by (model, condition) and summarise them over seeds.

    Returns an ordered dict (models in registry order, conditions centred-first).

    Series that do not line up across the seeds of a group are left out (``Group.dropped``).

    Raises:
        ValueError: the seeds of a group have different layer profiles, or the same
            (model, condition, seed) appears twice.
    """
    buckets: dict[tuple[str, str], list[dict]] = {}
    for run in results["runs"]:
        buckets.setdefault((run["model"], run["condition"]), []).append(run)
    for (model, cond), runs in buckets.items():
        seeds = [r["seed"] for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{model}/{cond}: seed(s) recorded twice: {sorted(seeds)}")
    models = model_order(m for m, _ in buckets)
    conds = condition_order(c for _, c in buckets)
    return {(m, c): _group(m, c, buckets[(m, c)]) for m in models for c in conds if (m, c) in buckets}
