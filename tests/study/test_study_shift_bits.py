"""Per-image, per-shift bits: written, read back, summarised and bootstrapped over any subset of
shifts, equal to recomputing from the predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiftlab.stats import PairedSample, difference
from shiftlab.study.measurements import image_statistics, study_shifts
from shiftlab.study.records import RecordError
from shiftlab.study.shift_bits import ShiftBits, load_shift_bits, save_shift_bits


def predictions(n_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random prediction table over the study's 121 shifts (3 classes, so agreement is common)."""
    shifts = study_shifts(8, 10, 4).offsets
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (n_images, len(shifts)), generator=gen), torch.randint(0, 3, (n_images,), generator=gen), shifts


def test_round_trip_through_the_file_is_exact(tmp_path):
    preds, labels, shifts = predictions(37, 0)  # 121 shifts: the last byte of a row is partly padding
    bits = ShiftBits.from_predictions(preds, labels, shifts)
    save_shift_bits(tmp_path / "r.shifts.npz", bits, root=tmp_path)
    back = load_shift_bits(tmp_path / "r.shifts.npz")
    assert np.array_equal(back.shifts, bits.shifts) and np.array_equal(back.agree, bits.agree)
    assert np.array_equal(back.correct, bits.correct) and back.n_images == 37
    with np.load(tmp_path / "r.shifts.npz") as data:
        assert data["agree"].shape == (37, 16) and data["agree"].dtype == np.uint8  # 121 bits in 16 bytes


def test_every_summary_equals_recomputing_from_the_predictions():
    preds, labels, shifts = predictions(50, 1)
    bits = ShiftBits.from_predictions(preds, labels, shifts)
    stats = image_statistics(preds, labels, shifts, n_classes=3, stride=8, in_range=4)
    assert np.allclose(bits.agreement(), stats["agreement"]) and np.allclose(bits.accuracy(), stats["accuracy"])
    d = bits.distances()
    assert np.allclose(bits.select((d >= 2) & (d <= 3)).agreement(), stats["agreement_d2_3"])
    assert np.allclose(bits.select(d == 8).accuracy(), stats["accuracy_d8"])
    aligned = (bits.shifts % 8 == 0).all(axis=1) & (d > 0)
    assert np.allclose(bits.select(aligned & (d == 8)).agreement(), stats["aligned_at_stride"])
    # a subset no statistic was computed for: the shifts along the x axis only, by hand
    axis = (bits.shifts[:, 0] == 0) & (d > 0)
    cols = torch.from_numpy(np.flatnonzero(axis))
    centre = preds[:, int(np.flatnonzero(d == 0)[0])]
    by_hand = (preds[:, cols] == centre[:, None]).double().mean(dim=1).numpy()
    assert np.allclose(bits.select(axis).agreement(), by_hand)
    assert np.isnan(bits.select(np.zeros(len(d), dtype=bool)).agreement()).all()


def test_a_subset_is_bootstrapped_like_any_per_image_statistic():
    runs = {model: [ShiftBits.from_predictions(*predictions(40, 10 * k + seed)) for seed in range(2)]
            for k, model in enumerate(("a", "b"))}
    far = runs["a"][0].distances() >= 9
    sample = PairedSample({m: np.stack([b.select(far).agreement() for b in bits]) for m, bits in runs.items()})
    interval = difference(sample, "a", "b", n_boot=200)
    direct = np.mean([b.select(far).agreement().mean() for b in runs["a"]]) - np.mean(
        [b.select(far).agreement().mean() for b in runs["b"]])
    assert interval.estimate == pytest.approx(direct) and interval.low <= interval.estimate <= interval.high


def test_bad_tables_and_damaged_files_are_refused(tmp_path):
    preds, labels, shifts = predictions(4, 2)
    with pytest.raises(ValueError, match=r"\(0, 0\) exactly once"):
        ShiftBits.from_predictions(preds[:, 1:], labels, shifts[1:])
    bits = ShiftBits.from_predictions(preds, labels, shifts)
    with pytest.raises(ValueError, match="correct must be an"):
        ShiftBits(bits.shifts, bits.agree, bits.correct[:, :5])
    arrays = bits.to_arrays()
    arrays["agree"] = arrays["agree"][:, :3]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(RecordError, match="bad.npz is damaged"):
        load_shift_bits(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RecordError, match="junk.npz is damaged"):
        load_shift_bits(tmp_path / "junk.npz")
