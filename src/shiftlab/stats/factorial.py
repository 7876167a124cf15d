"""Main effects and interactions over a balanced factorial design (``docs/definitions.md``, "Factorial effects").

A design crosses factors, e.g. downsampling x head x condition; each combination of levels is one cell of a
:class:`~shiftlab.stats.bootstrap.PairedSample`. The main effect of a factor is the mean over the cells at one
level minus the mean over the cells at another, every combination of the other factors weighted equally;
an interaction is the difference of differences. Both are linear contrasts of cell means, so they are
computed on the paired bootstrap replicates of :func:`~shiftlab.stats.bootstrap.contrast`. Every combination
must be present: never a mean over an unbalanced subset.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, Interval, PairedSample, contrast

__all__ = ["Design", "Effect", "interaction", "main_effect"]


def _describe(factors: tuple[str, ...], levels: tuple[str, ...]) -> str:
    return ", ".join(f"{f}={lv}" for f, lv in zip(factors, levels, strict=True))


@dataclass(frozen=True, eq=False)
class Design:
    """A full factorial design: factor -> its levels, and the cell key of each combination of levels.

    Args:
        factors: factor name -> tuple of distinct levels (at least one), in a fixed order.
        cell_of: the cell key of a combination, either a callable taking a dict ``{factor: level}``, or a
            mapping from the tuple of levels (in ``factors`` order) to the key. Every combination needs a
            distinct key; a missing one (absent from the mapping, or the callable returns None or raises
            KeyError) is a ValueError naming it.

    Example:
        >>> d = Design({"downsampling": ("strided", "maxpool"), "head": ("gap", "fc")},
        ...            lambda lv: f"{lv['downsampling']}_{lv['head']}")
        >>> d.cells[("maxpool", "fc")], len(d.cells)
        ('maxpool_fc', 4)
    """

    factors: Mapping[str, tuple[str, ...]]
    cell_of: Callable[[dict[str, str]], str | None] | Mapping[tuple[str, ...], str]
    cells: dict[tuple[str, ...], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.factors:
            raise ValueError("a design needs at least one factor")
        factors = {str(f): tuple(str(lv) for lv in levels) for f, levels in self.factors.items()}
        for f, levels in factors.items():
            if not levels or len(set(levels)) != len(levels):
                raise ValueError(f"factor {f!r} needs at least one level and distinct levels, got {levels}")
        names = tuple(factors)
        cells: dict[tuple[str, ...], str] = {}
        missing = []
        for combo in itertools.product(*factors.values()):
            key = self._lookup(names, combo)
            if key is None:
                missing.append(_describe(names, combo))
            else:
                cells[combo] = key
        if missing:
            raise ValueError(f"unbalanced design: no cell for {len(missing)} combination(s): {'; '.join(missing)}")
        dup = sorted(k for k, n in Counter(cells.values()).items() if n > 1)
        if dup:
            raise ValueError(f"every combination needs its own cell; shared cell keys {dup}")
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "cells", cells)

    def _lookup(self, names: tuple[str, ...], combo: tuple[str, ...]) -> str | None:
        if isinstance(self.cell_of, Mapping):
            return self.cell_of.get(combo)
        try:
            return self.cell_of(dict(zip(names, combo, strict=True)))
        except KeyError:
            return None

    def check(self, sample: PairedSample) -> None:
        """Raise ValueError naming every cell of the design that ``sample`` lacks.

        Example:
            >>> d = Design({"head": ("gap", "fc")}, {("gap",): "g", ("fc",): "f"})
            >>> d.check(PairedSample({"g": [[1.0]]}))
            Traceback (most recent call last):
            ...
            ValueError: unbalanced design: the sample has no values for cell(s) 'f' (head=fc)
        """
        names = tuple(self.factors)
        missing = [f"{key!r} ({_describe(names, combo)})" for combo, key in self.cells.items() if key not in sample.values]
        if missing:
            raise ValueError(f"unbalanced design: the sample has no values for cell(s) {'; '.join(missing)}")

    def _signs(self, factor: str, a: str, b: str) -> dict[str, float]:
        """Per cell: +1 at level ``a`` of ``factor``, -1 at level ``b``, 0 elsewhere."""
        if factor not in self.factors:
            raise ValueError(f"unknown factor {factor!r}; the design has {list(self.factors)}")
        for lv in (a, b):
            if lv not in self.factors[factor]:
                raise ValueError(f"factor {factor!r} has no level {lv!r}; its levels are {self.factors[factor]}")
        if a == b:
            raise ValueError(f"compare two different levels of {factor!r}, got {a!r} twice")
        k = tuple(self.factors).index(factor)
        return {key: {a: 1.0, b: -1.0}.get(combo[k], 0.0) for combo, key in self.cells.items()}


@dataclass(frozen=True)
class Effect:
    """A factorial effect of one metric with its interval.

    ``kind`` is "main" (one factor, ``levels = ((a, b),)``: mean at ``a`` minus mean at ``b``) or "interaction"
    (two factors, ``levels = ((a1, b1), (a2, b2))``: the difference of differences).

    Example:
        >>> e = Effect("main", ("head",), (("gap", "fc"),), "consistency", Interval(0.1, 0.05, 0.15))
        >>> e.to_dict()["levels"], e.to_dict()["interval"]["high"]
        ([['gap', 'fc']], 0.15)
    """

    kind: str
    factors: tuple[str, ...]
    levels: tuple[tuple[str, str], ...]
    metric: str
    interval: Interval

    def __post_init__(self) -> None:
        n = {"main": 1, "interaction": 2}.get(self.kind)
        if n is None:
            raise ValueError(f"kind must be 'main' or 'interaction', got {self.kind!r}")
        if len(self.factors) != n or len(self.levels) != n or any(len(p) != 2 for p in self.levels):
            raise ValueError(f"a {self.kind} effect needs {n} factor(s) and one (a, b) pair of levels per factor")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "factors": list(self.factors),
            "levels": [list(p) for p in self.levels],
            "metric": self.metric,
            "interval": self.interval.to_dict(),
        }


def main_effect(
    design: Design,
    sample: PairedSample,
    factor: str,
    level_a: str,
    level_b: str,
    *,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> Interval:
    """Main effect of ``factor``: mean over the cells at ``level_a`` minus mean over the cells at ``level_b``.

    Each mean weights every combination of the other factors equally (``docs/definitions.md``, "Factorial
    effects"); the interval is a paired bootstrap contrast (``level`` is the interval's coverage, not a factor
    level). Raises ValueError if the sample lacks a cell of the design.

    Example:
        >>> d = Design({"f": ("x", "y"), "g": ("u", "v")}, lambda lv: lv["f"] + lv["g"])
        >>> s = PairedSample({"xu": [[4.0]], "xv": [[2.0]], "yu": [[1.0]], "yv": [[1.0]]})
        >>> main_effect(d, s, "f", "x", "y", n_boot=10).estimate
        2.0
    """
    design.check(sample)
    signs = design._signs(factor, level_a, level_b)
    n = sum(1 for s in signs.values() if s > 0)
    weights = {key: s / n for key, s in signs.items() if s}
    return contrast(sample, weights, level=level, n_boot=n_boot, seed=seed)


def interaction(
    design: Design,
    sample: PairedSample,
    factor1: str,
    levels1: tuple[str, str],
    factor2: str,
    levels2: tuple[str, str],
    *,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> Interval:
    """Two-way interaction: ``[m(a1, a2) - m(b1, a2)] - [m(a1, b2) - m(b1, b2)]``.

    ``levels1 = (a1, b1)`` of ``factor1`` and ``levels2 = (a2, b2)`` of ``factor2``; each ``m`` averages the cells
    at those two levels over every combination of the remaining factors, weighted equally
    (``docs/definitions.md``, "Factorial effects"). Paired bootstrap contrast, as :func:`main_effect`.

    Example:
        >>> d = Design({"f": ("x", "y"), "g": ("u", "v")}, lambda lv: lv["f"] + lv["g"])
        >>> s = PairedSample({"xu": [[4.0]], "xv": [[2.0]], "yu": [[1.0]], "yv": [[1.0]]})
        >>> interaction(d, s, "f", ("x", "y"), "g", ("u", "v"), n_boot=10).estimate
        2.0
    """
    if factor1 == factor2:
        raise ValueError(f"an interaction needs two different factors, got {factor1!r} twice")
    design.check(sample)
    s1 = design._signs(factor1, *levels1)
    s2 = design._signs(factor2, *levels2)
    products = {key: s1[key] * s2[key] for key in s1}
    n = sum(1 for p in products.values() if p > 0) // 2  # cells per (level1, level2) combination
    weights = {key: p / n for key, p in products.items() if p}
    return contrast(sample, weights, level=level, n_boot=n_boot, seed=seed)
