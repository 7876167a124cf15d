"""Paired two-way bootstrap over seeds and images (``docs/definitions.md``, "Intervals").

A metric's values live in one array ``[n_seeds, n_images]`` per cell (a cell = model x condition), with the
same seed indices and the same images in every cell. One bootstrap replicate ``b`` draws seed indices
``s_b`` and image indices ``i_b`` with replacement *once* and applies them to every cell; a cell's replicate
mean is the mean of ``v[s_b][:, i_b]``. Since every cell sees the same draws, differences, contrasts and
factorial effects are paired: variation shared by the cells (easy or hard images, lucky seeds) cancels.

Replicate means are computed from draw counts rather than by indexing: with ``w_s = bincount(s_b)`` and
``w_i = bincount(i_b)``, the replicate mean is ``w_s^T V w_i / (sum w_s * sum w_i)``. A NaN marks a value that
is not defined for that image (a conditional metric, e.g. consistency over the images classified correctly
at the centre); it gets weight 0, so the mean is the ratio estimator ``w_s^T V0 w_i / w_s^T M w_i`` with
``V0`` the values with NaN set to 0 and ``M`` the indicator of defined values.

The two-way bootstrap targets the mean over the population of seeds *and* the population of images: an
interval says how the result would vary with other training seeds and other test images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "Interval",
    "PairedSample",
    "bootstrap_indices",
    "cell_means",
    "contrast",
    "difference",
    "percentile_interval",
    "replicate_means",
    "replicate_sums",
]

#: Bootstrap replicates drawn when a call gives no ``n_boot``.
DEFAULT_N_BOOT = 2000
#: Coverage of the percentile intervals when a call gives no ``level``.
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class PairedSample:
    """Values of one metric per cell, paired over seeds and images.

    Args:
        values: cell key -> array ``[n_seeds, n_images]``; row ``s`` is seed index ``s`` and column ``i`` image
            ``i`` in every cell. Values are finite, or NaN where the metric is not defined for that image
            (means ignore NaN). The arrays are copied to read-only float64.

    Shape:
        - every ``values[cell]``: ``(n_seeds, n_images)``, the same for all cells, both sizes >= 1

    Example:
        >>> s = PairedSample({"a": [[1.0, 2.0], [3.0, 4.0]], "b": [[0.0, float("nan")], [1.0, 1.0]]})
        >>> s.cells, s.n_seeds, s.n_images
        (('a', 'b'), 2, 2)
    """

    values: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        if not isinstance(self.values, Mapping) or not self.values:
            raise ValueError("values must be a non-empty mapping cell -> array [n_seeds, n_images]")
        clean: dict[str, np.ndarray] = {}
        shape = None
        for cell, v in self.values.items():
            if not isinstance(cell, str):
                raise ValueError(f"cell keys must be strings, got {cell!r}")
            arr = np.array(v, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
                raise ValueError(f"cell {cell!r}: expected an array [n_seeds, n_images] with both sizes >= 1, "
                                 f"got shape {arr.shape}")
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise ValueError(f"cell {cell!r}: shape {arr.shape} differs from {shape} of the first cell; cells must be paired")
            if np.isinf(arr).any():
                raise ValueError(f"cell {cell!r}: values must be finite or NaN (not defined), found +-inf")
            if np.isnan(arr).all():
                raise ValueError(f"cell {cell!r}: every value is NaN, its mean is not defined")
            arr.setflags(write=False)
            clean[cell] = arr
        object.__setattr__(self, "values", clean)

    @property
    def cells(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def n_seeds(self) -> int:
        return next(iter(self.values.values())).shape[0]

    @property
    def n_images(self) -> int:
        return next(iter(self.values.values())).shape[1]


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval (``docs/definitions.md``, "Intervals").

    ``estimate`` is the plug-in value on the full sample; ``low``/``high`` the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the replicates; ``n_boot`` the number of replicates used.

    Example:
        >>> Interval(0.5, 0.4, 0.6, 0.95, 2000).to_dict()
        {'estimate': 0.5, 'low': 0.4, 'high': 0.6, 'level': 0.95, 'n_boot': 2000}
    """

    estimate: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    n_boot: int = DEFAULT_N_BOOT

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_indices(n_seeds: int, n_images: int, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seed and image indices of ``n_boot`` paired replicates, drawn with replacement.

    Deterministic: drawn from ``numpy.random.Generator(PCG64(seed))``, seed indices first. With ``n_seeds == 1``
    every seed index is 0: only images are resampled and variation between seeds is not measured.

    Shape:
        - seed_idx: ``(n_boot, n_seeds)``, values in ``[0, n_seeds)``
        - image_idx: ``(n_boot, n_images)``, values in ``[0, n_images)``

    Example:
        >>> s, i = bootstrap_indices(3, 5, n_boot=4, seed=1)
        >>> s.shape, i.shape, bool((i < 5).all())
        ((4, 3), (4, 5), True)
    """
    for name, n in (("n_seeds", n_seeds), ("n_images", n_images), ("n_boot", n_boot)):
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    seed_idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    image_idx = rng.integers(0, n_images, size=(n_boot, n_images))
    return seed_idx, image_idx


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """``[B, k]`` indices in ``[0, n)`` -> ``[B, n]`` float64 draw counts."""
    b = idx.shape[0]
    flat = (idx + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _weighted_sums(v: np.ndarray, w_s: np.ndarray, w_i: np.ndarray) -> np.ndarray:
    """``v [K, S, I]``, ``w_s [B, S]``, ``w_i [B, I]`` -> ``[K, B]`` with entries ``w_s[b]^T v[k] w_i[b]``."""
    k, s, i = v.shape
    t = (v.reshape(k * s, i) @ w_i.T).reshape(k, s, -1)  # [K, S, B]: one matmul for every cell and seed
    return np.einsum("ksb,bs->kb", t, w_s)


def replicate_means(sample: PairedSample, seed_idx: np.ndarray, image_idx: np.ndarray,
                    cells: Iterable[str] | None = None) -> np.ndarray:
    """Mean of each cell on each replicate, ignoring NaN (ratio estimator).

    Replicate ``b`` of cell ``c`` is ``nanmean(values[c][seed_idx[b]][:, image_idx[b]])``, computed for all cells
    at once from draw counts. It is NaN where the replicate drew no defined value. With the identity indices
    ``seed_idx = arange(n_seeds)[None]``, ``image_idx = arange(n_images)[None]`` it gives the plug-in means.

    Args:
        sample: the paired values.
        seed_idx, image_idx: replicate indices, e.g. from :func:`bootstrap_indices`.
        cells: which cells (default: all, in ``sample.cells`` order).

    Shape:
        - seed_idx: ``(B, k_s)``, image_idx: ``(B, k_i)`` (any draw sizes, usually ``n_seeds`` and ``n_images``)
        - output: ``(K, B)`` for the ``K`` cells

    Example:
        >>> s = PairedSample({"a": [[1.0, 2.0], [3.0, 4.0]]})
        >>> replicate_means(s, [[0, 1], [1, 1]], [[0, 1], [1, 1]]).tolist()
        [[2.5, 4.0]]
    """
    seed_idx, image_idx = np.asarray(seed_idx), np.asarray(image_idx)
    if seed_idx.ndim != 2 or image_idx.ndim != 2 or seed_idx.shape[0] != image_idx.shape[0]:
        raise ValueError(f"seed_idx and image_idx must be [B, k] with the same B, got {seed_idx.shape} and {image_idx.shape}")
    cells = sample.cells if cells is None else tuple(cells)
    unknown = [c for c in cells if c not in sample.values]
    if unknown:
        raise ValueError(f"unknown cells {unknown}; the sample has {list(sample.cells)}")
    w_s, w_i = _counts(seed_idx, sample.n_seeds), _counts(image_idx, sample.n_images)
    v = np.stack([sample.values[c] for c in cells])  # [K, S, I]
    defined = ~np.isnan(v)
    num = _weighted_sums(np.where(defined, v, 0.0), w_s, w_i)
    den = np.broadcast_to(w_s.sum(1) * w_i.sum(1), num.shape).copy()
    partial = ~defined.all(axis=(1, 2))
    if partial.any():
        den[partial] = _weighted_sums(defined[partial].astype(np.float64), w_s, w_i)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def replicate_sums(values: np.ndarray, seed_idx: np.ndarray, image_idx: np.ndarray) -> np.ndarray:
    """Sum of each array over each replicate's drawn seeds and images (with repeats), for
    statistics that are ratios of sums rather than means (e.g. mIoU from per-image counts).

    Shape:
        - values: ``(K, n_seeds, n_images)``, finite
        - seed_idx: ``(B, k_s)``; image_idx: ``(B, k_i)``
        - output: ``(K, B)``

    Example:
        >>> replicate_sums(np.array([[[1.0, 2.0], [3.0, 4.0]]]), [[0, 0]], [[1, 1]]).tolist()
        [[8.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    seed_idx, image_idx = np.asarray(seed_idx), np.asarray(image_idx)
    if v.ndim != 3 or not np.isfinite(v).all():
        raise ValueError(f"values must be a finite array [K, n_seeds, n_images], got shape {v.shape}")
    if seed_idx.ndim != 2 or image_idx.ndim != 2 or seed_idx.shape[0] != image_idx.shape[0]:
        raise ValueError(f"seed_idx and image_idx must be [B, k] with the same B, got {seed_idx.shape} and {image_idx.shape}")
    return _weighted_sums(v, _counts(seed_idx, v.shape[1]), _counts(image_idx, v.shape[2]))


def percentile_interval(estimate: float, replicates: np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    """Percentile interval of a statistic from its bootstrap replicates.

    Replicates that are NaN (the statistic was not defined on that replicate) are dropped and ``n_boot``
    counts the ones used; a ValueError if none is left.

    Shape:
        - replicates: ``(B,)``

    Example:
        >>> percentile_interval(2.0, np.arange(5.0), level=0.5)
        Interval(estimate=2.0, low=1.0, high=3.0, level=0.5, n_boot=5)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    r = np.asarray(replicates, dtype=np.float64).ravel()
    r = r[~np.isnan(r)]
    if r.size == 0:
        raise ValueError("no replicate defines the statistic (all are NaN)")
    low, high = np.quantile(r, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Interval(float(estimate), float(low), float(high), float(level), int(r.size))


def _identity(sample: PairedSample) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(sample.n_seeds)[None], np.arange(sample.n_images)[None]


def contrast(
    sample: PairedSample,
    weights: Mapping[str, float],
    *,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> Interval:
    """Interval of the linear combination ``sum_c weights[c] * mean(c)`` of cell means.

    Every cell is evaluated on the same replicates (:func:`bootstrap_indices` with ``n_boot`` and ``seed``, which
    depend only on the sample's sizes), so the combination is paired; calls with the same ``seed`` share
    replicates. With one seed only images are resampled (seed variation unmeasured).
    See ``docs/definitions.md``, "Intervals".

    Example:
        >>> s = PairedSample({"a": [[1.0, 1.0]], "b": [[3.0, 3.0]]})
        >>> contrast(s, {"a": 0.5, "b": 0.5}, n_boot=10).estimate
        2.0
    """
    if not weights:
        raise ValueError("weights must name at least one cell")
    bad = {c: w for c, w in weights.items() if not np.isfinite(w)}
    if bad:
        raise ValueError(f"weights must be finite, got {bad}")
    cells = tuple(weights)
    w = np.array([weights[c] for c in cells], dtype=np.float64)
    estimate = float(w @ replicate_means(sample, *_identity(sample), cells)[:, 0])
    reps = w @ replicate_means(sample, *bootstrap_indices(sample.n_seeds, sample.n_images, n_boot, seed), cells)
    return percentile_interval(estimate, reps, level)


def difference(
    sample: PairedSample,
    a: str,
    b: str,
    *,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> Interval:
    """Interval of ``mean(a) - mean(b)``, paired: both cells on the same replicates (see :func:`contrast`).

    Example:
        >>> s = PairedSample({"a": [[2.0, 4.0]], "b": [[1.0, 3.0]]})
        >>> difference(s, "a", "b", n_boot=50)
        Interval(estimate=1.0, low=1.0, high=1.0, level=0.95, n_boot=50)
    """
    weights: dict[str, float] = {a: 1.0}
    weights[b] = weights.get(b, 0.0) - 1.0
    return contrast(sample, weights, level=level, n_boot=n_boot, seed=seed)


def cell_means(
    sample: PairedSample,
    cells: Iterable[str] | None = None,
    *,
    level: float = DEFAULT_LEVEL,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> dict[str, Interval]:
    """Interval of each cell's mean (NaN ignored), all cells on the same replicates (see :func:`contrast`).

    Example:
        >>> s = PairedSample({"a": [[1.0, 3.0]], "b": [[2.0, float("nan")]]})
        >>> {c: i.estimate for c, i in cell_means(s, n_boot=20).items()}
        {'a': 2.0, 'b': 2.0}
    """
    cells = sample.cells if cells is None else tuple(cells)
    estimates = replicate_means(sample, *_identity(sample), cells)[:, 0]
    reps = replicate_means(sample, *bootstrap_indices(sample.n_seeds, sample.n_images, n_boot, seed), cells)
    return {c: percentile_interval(e, r, level) for c, e, r in zip(cells, estimates, reps, strict=True)}
