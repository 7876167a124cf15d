"""The paired two-way bootstrap: exactness, NaN (conditional metric) handling, determinism, coverage, pairing."""

from __future__ import annotations

import numpy as np
import pytest

from shiftlab.stats import (
    Interval,
    PairedSample,
    bootstrap_indices,
    cell_means,
    contrast,
    difference,
    percentile_interval,
    replicate_means,
)


def _random_sample(n_cells: int, n_seeds: int, n_images: int, seed: int = 0, nan_cells: int = 0) -> PairedSample:
    rng = np.random.default_rng(seed)
    values = {f"c{k}": rng.normal(size=(n_seeds, n_images)) for k in range(n_cells)}
    for k in range(nan_cells):
        values[f"c{k}"][rng.random((n_seeds, n_images)) < 0.4] = np.nan
    return PairedSample(values)


def test_replicate_means_match_indexing_for_every_replicate():
    sample = _random_sample(n_cells=4, n_seeds=3, n_images=17, nan_cells=2)
    seed_idx, image_idx = bootstrap_indices(3, 17, n_boot=50, seed=3)
    got = replicate_means(sample, seed_idx, image_idx)
    want = np.array(
        [[np.nanmean(sample.values[c][seed_idx[b]][:, image_idx[b]]) for b in range(50)] for c in sample.cells]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_nan_marks_undefined_values_ratio_estimator_by_hand():
    nan = np.nan
    v = np.array([[1.0, nan, 3.0], [nan, 5.0, 7.0]])
    sample = PairedSample({"cond": v, "full": np.ones((2, 3))})
    # Plug-in: the mean of the defined values, pooled over seeds and images.
    assert cell_means(sample, n_boot=10)["cond"].estimate == pytest.approx((1 + 3 + 5 + 7) / 4)
    # One replicate: seeds (1, 1), images (0, 2, 2): values [nan, 7, 7] twice -> defined 7 x 4 -> 7.
    # Another: seeds (0, 1), images (0, 1, 1): [1, nan, nan] and [nan, 5, 5] -> (1 + 5 + 5) / 3.
    # Another: seeds (0, 0), images (1, 1, 1): nothing defined -> NaN.
    got = replicate_means(sample, [[1, 1], [0, 1], [0, 0]], [[0, 2, 2], [0, 1, 1], [1, 1, 1]], cells=["cond"])
    np.testing.assert_allclose(got[0, :2], [7.0, 11.0 / 3.0], rtol=1e-15)
    assert np.isnan(got[0, 2])
    # The undefined replicate is dropped from the interval and n_boot says so.
    assert percentile_interval(0.0, got[0]).n_boot == 2


def test_constant_cells_give_exact_degenerate_intervals():
    sample = PairedSample({"a": np.full((2, 5), 0.75), "b": np.full((2, 5), 0.25)})
    assert difference(sample, "a", "b", n_boot=100) == Interval(0.5, 0.5, 0.5, 0.95, 100)
    assert contrast(sample, {"a": 2.0, "b": -4.0}, n_boot=100).low == pytest.approx(0.5, abs=1e-15)


def test_deterministic_for_a_fixed_seed_and_different_for_another():
    a1, b1 = bootstrap_indices(3, 40, n_boot=200, seed=11)
    a2, b2 = bootstrap_indices(3, 40, n_boot=200, seed=11)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(b1, bootstrap_indices(3, 40, n_boot=200, seed=12)[1])
    sample = _random_sample(n_cells=2, n_seeds=3, n_images=40)
    assert difference(sample, "c0", "c1", n_boot=200, seed=5) == difference(sample, "c0", "c1", n_boot=200, seed=5)
    assert difference(sample, "c0", "c1", n_boot=200, seed=5) != difference(sample, "c0", "c1", n_boot=200, seed=6)


def test_one_seed_resamples_images_only():
    seed_idx, image_idx = bootstrap_indices(1, 30, n_boot=100, seed=0)
    assert (seed_idx == 0).all() and len(np.unique(image_idx)) == 30
    sample = PairedSample({"a": np.arange(30.0)[None]})
    iv = cell_means(sample, n_boot=500)["a"]
    assert iv.estimate == pytest.approx(14.5) and iv.low < 14.5 < iv.high and iv.high - iv.low > 4.0


def test_contrast_is_the_linear_combination_on_shared_replicates():
    sample = _random_sample(n_cells=3, n_seeds=4, n_images=25, nan_cells=1)
    means = replicate_means(sample, *bootstrap_indices(4, 25, n_boot=300, seed=2))
    want = 0.5 * means[0] - 2.0 * means[2]
    iv = contrast(sample, {"c0": 0.5, "c2": -2.0}, n_boot=300, seed=2, level=0.8)
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(want, [0.1, 0.9])), rel=1e-12)
    per_cell = cell_means(sample, n_boot=300, seed=2)
    assert iv.estimate == pytest.approx(0.5 * per_cell["c0"].estimate - 2.0 * per_cell["c2"].estimate, rel=1e-12)


@pytest.mark.parametrize(
    "values, match",
    [
        ({}, "non-empty"),
        ({"a": np.ones(3)}, "shape"),
        ({"a": np.ones((0, 3))}, "both sizes >= 1"),
        ({"a": np.ones((2, 3)), "b": np.ones((2, 4))}, "differs"),
        ({"a": np.array([[1.0, np.inf]])}, "finite or NaN"),
        ({"a": np.full((2, 2), np.nan)}, "every value is NaN"),
    ],
)
def test_invalid_samples_are_rejected_with_a_reason(values, match):
    with pytest.raises(ValueError, match=match):
        PairedSample(values)


def test_invalid_arguments_are_rejected():
    sample = _random_sample(n_cells=2, n_seeds=2, n_images=5)
    with pytest.raises(ValueError, match="unknown cells"):
        difference(sample, "c0", "nope", n_boot=10)
    with pytest.raises(ValueError, match="level"):
        cell_means(sample, level=1.0, n_boot=10)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_indices(2, 5, n_boot=0)
    with pytest.raises(ValueError, match="finite"):
        contrast(sample, {"c0": np.nan})


def _simulate(rng: np.random.Generator, n_seeds: int, n_images: int, mu: float) -> np.ndarray:
    """``mu + seed effect + image effect + noise``; its population mean over seeds and images is ``mu``.

    The seed and image effects contribute about equally to the variance of the grand mean, so an interval
    that ignores either source undercovers.
    """
    seed_fx = rng.normal(0.0, 0.05, size=(n_seeds, 1))
    image_fx = rng.normal(0.0, 0.2, size=(1, n_images))
    return mu + seed_fx + image_fx + rng.normal(0.0, 0.1, size=(n_seeds, n_images))


def test_coverage_of_the_population_mean_is_near_nominal():
    # The two-way bootstrap targets the mean over the populations of seeds and of images (both random here),
    # not the mean over these particular images: fresh seeds and images in every simulated data set.
    rng = np.random.default_rng(2024)
    mu, n_sets, n_seeds, n_images, n_boot = 0.6, 200, 12, 200, 500
    fixed_seeds = np.tile(np.arange(n_seeds), (n_boot, 1))
    fixed_images = np.tile(np.arange(n_images), (n_boot, 1))
    hits = np.zeros(3)
    for k in range(n_sets):
        sample = PairedSample({"m": _simulate(rng, n_seeds, n_images, mu)})
        iv = cell_means(sample, n_boot=n_boot, seed=k)["m"]
        hits[0] += iv.low <= mu <= iv.high
        # The same replicates resampling one dimension only: these must miss too often.
        seed_idx, image_idx = bootstrap_indices(n_seeds, n_images, n_boot, seed=k)
        for j, idx in ((1, (fixed_seeds, image_idx)), (2, (seed_idx, fixed_images))):
            one_way = percentile_interval(iv.estimate, replicate_means(sample, *idx)[0])
            hits[j] += one_way.low <= mu <= one_way.high
    coverage = hits / n_sets
    assert 0.90 <= coverage[0] <= 0.99
    assert coverage[1] < 0.88 and coverage[2] < 0.88


def test_pairing_cancels_shared_image_noise():
    rng = np.random.default_rng(7)
    shared = rng.normal(0.0, 1.0, size=(1, 300))  # image difficulty, common to both models
    a = 0.8 + shared + rng.normal(0.0, 0.05, size=(3, 300))
    b = 0.7 + shared + rng.normal(0.0, 0.05, size=(3, 300))
    sample = PairedSample({"a": a, "b": b})
    paired = difference(sample, "a", "b", n_boot=1000, seed=0)
    # Unpaired: each cell resampled with its own draws.
    ra = replicate_means(sample, *bootstrap_indices(3, 300, n_boot=1000, seed=1), ["a"])[0]
    rb = replicate_means(sample, *bootstrap_indices(3, 300, n_boot=1000, seed=2), ["b"])[0]
    unpaired = percentile_interval(paired.estimate, ra - rb)
    assert paired.low < 0.1 < paired.high
    assert (paired.high - paired.low) * 10 < unpaired.high - unpaired.low
