"""``explore``: what the shift explorer shows of a model, checked against the study's own
prediction table and a direct forward pass at every position (float64, so no near-tie can flip
a class); the packed record format; bad input."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from torch import nn

from shiftlab.data.canvas import translate
from shiftlab.measure.invariance import invariance
from shiftlab.measure.shiftsets import ShiftSet
from shiftlab.study.measurements import explore, explorer_images, study_shifts
from shiftlab.study.records import ExplorerRecord, RecordError, RunRecord, pack_uint8, unpack_uint8
from shiftlab.zoo import build

RADIUS = 10


@pytest.fixture(scope="module")
def canvases() -> torch.Tensor:
    """Six 48 x 48 zero canvases with a 20 x 20 object of 8-bit pixel values in the middle."""
    gen = torch.Generator().manual_seed(0)
    images = torch.zeros(6, 1, 48, 48, dtype=torch.float64)
    images[:, :, 14:34, 14:34] = torch.randint(0, 256, (6, 1, 20, 20), generator=gen).double() / 255
    return images


@pytest.fixture(scope="module")
def model() -> nn.Module:
    """A conv-FC net: position-sensitive, so its class changes over the square (an untrained zoo
    net predicts one class everywhere)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 48 * 48, 10))
    return net.double().eval()


def test_explore_matches_a_direct_forward_pass_at_every_position(model, canvases):
    labels = torch.tensor([1, 0, 1, 2])
    rec = explore(model, canvases[:4], labels, radius=RADIUS, n_images=3)
    assert rec.images == [1, 0, 3]  # one image of each class first
    images, labels = canvases[[1, 0, 3]], labels[[1, 0, 3]]
    positions = ShiftSet.grid(RADIUS).offsets.long()
    assert rec.positions().tolist() == positions.tolist() and rec.positions().shape == (441, 2)
    with torch.inference_mode():
        moved = torch.stack([translate(images, d.expand(3, 2)) for d in positions], dim=1)  # [3, 441, 1, 48, 48]
        probs = model(moved.reshape(-1, 1, 48, 48)).softmax(dim=1).reshape(3, 441, -1)
    top = probs.max(dim=2)
    assert np.array_equal(rec.class_table(), top.indices.numpy())
    assert np.abs(rec.probability_table() - top.values.numpy()).max() <= 0.5 / 255 + 1e-12  # rounded to k / 255
    assert all(len(np.unique(row)) > 2 for row in rec.class_table())  # the class changes over the square
    assert rec.labels == labels.tolist() and rec.canvas_shape == [3, 1, 48, 48] and rec.radius == RADIUS
    assert np.array_equal(rec.canvases() / 255.0, images.numpy())  # 8-bit pixels are kept exactly


def test_the_explorer_images_cover_the_classes_of_a_sorted_evaluation_set():
    labels = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)  # sorted by class, as MNIST-5k's test split
    assert explorer_images(labels, 7).tolist() == [0, 5, 10, 1, 6, 11, 2]
    assert sorted(explorer_images(labels, 99).tolist()) == list(range(15))


def test_explore_agrees_with_the_study_prediction_table_at_the_study_shifts(model, canvases):
    labels = torch.zeros(6, dtype=torch.long)
    rec = explore(model, canvases, labels, radius=RADIUS)
    shifts = study_shifts(8, RADIUS, 4)
    table = invariance(model, canvases, labels, shifts=shifts, mode="zeros", keep_predictions=True).predictions
    column = {tuple(p): j for j, p in enumerate(rec.positions().tolist())}
    cols = [column[tuple(p)] for p in shifts.offsets.long().tolist()]
    assert np.array_equal(rec.class_table()[:, cols], table.numpy())
    assert len(np.unique(table.numpy())) > 2


def test_explore_leaves_the_model_as_it_was_even_when_it_raises(canvases):
    net = build("maxpool_gap", width=4, input_size=48, seed=1).double().train()
    wide = _Wide(300).double().train()  # raises inside the measurement, after its first forward pass
    cases = [(net, canvases[:2], None, True), (wide, canvases[:2], "at most 256 classes", True),
             (net, canvases[:2] * 2, r"values in \[0, 1\]", False)]  # refused before the model runs
    for model, images, error, runs in cases:
        before = copy.deepcopy(model.state_dict())
        with pytest.raises(ValueError, match=error) if error else nullcontext():
            with pytest.warns(UserWarning, match="training mode") if runs else nullcontext():
                explore(model, images, torch.tensor([0, 1]), radius=2)
        assert all(m.training for m in model.modules())  # measured in eval mode, then restored
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included


class _Map(nn.Module):
    def forward(self, x):
        return x


class _Wide(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(48 * 48, classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(radius=-1), "radius must be an int >= 0"),
    (dict(radius=True), "radius must be an int >= 0"),
    (dict(radius=48), "too large for 48x48 images"),
    (dict(radius=1, n_images=0), "n_images must be an int >= 1"),
    (dict(radius=1, labels=torch.tensor([0])), "give one label per image"),
    (dict(radius=1, model=_Map()), r"output is \[N, classes\]"),
    (dict(radius=1, model=_Wide(300)), "at most 256 classes"),
])
def test_explore_refuses_bad_input_with_the_fix(model, canvases, kwargs, match):
    args = dict(model=model, images=canvases[:2], labels=torch.tensor([0, 1]))
    args.update(kwargs)
    net = args["model"].double().eval()
    with pytest.raises(ValueError, match=match):
        explore(net, args["images"], args["labels"], radius=args["radius"], n_images=args.get("n_images", 16))


def test_pack_round_trips_and_damage_is_named():
    a = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    text = pack_uint8(a)
    assert text.isascii() and np.array_equal(unpack_uint8(text, a.shape), a)
    with pytest.raises(RecordError, match="damaged"):
        unpack_uint8(text[:-8] + "!!!!!!!!", a.shape)
    with pytest.raises(RecordError, match="needs 104"):
        unpack_uint8(text, (2, 52))
    with pytest.raises(TypeError, match="uint8"):
        pack_uint8(a.astype(np.int64))


def test_a_record_keeps_its_explorer_and_an_older_record_reads_without_one(model, canvases):
    rec = explore(model, canvases[:2], torch.tensor([3, 4]), radius=2)
    fields = dict(key="strided_gap__centred__seed0", model="strided_gap", downsampling="strided", head="gap",
                  padding="zeros", condition="centred", seed=0, width=4, params=1, macs=1, receptive_field=1,
                  total_stride=8, training=dict(epochs=1, converged=True, target_accuracy=0.9, final_train_accuracy=0.9,
                                                final_train_loss=0.1, seconds=1.0, history=[]),
                  summary={}, profile=None, periodicity=None, equivariance=None, seconds=1.0)
    back = RunRecord.from_dict(dict(fields, explorer=copy.deepcopy(rec.__dict__)))
    assert isinstance(back.explorer, ExplorerRecord) and back.explorer == rec
    assert RunRecord.from_dict(back.to_dict()) == back
    assert RunRecord.from_dict(fields).explorer is None  # written before the explorer existed
    with pytest.raises(RecordError, match="not a valid run record"):
        RunRecord.from_dict(dict(fields, explorer={"radius": 2}))
    for bad in ({"radius": "<b>"}, {"images": [0]}, {"labels": [0, "1"]}, {"canvas_shape": [2, 1, 12]}, {"pixels": 3}):
        with pytest.raises(RecordError, match="explorer record needs"):
            RunRecord.from_dict(dict(fields, explorer=dict(copy.deepcopy(rec.__dict__), **bad)))
    for bad in ({"classes": rec.confidence[:-6] + "AAAAAA"}, {"radius": 3}, {"pixels": rec.classes}):
        with pytest.raises(RecordError, match="record.*packed array"):  # damaged, or not of its shape
            RunRecord.from_dict(dict(fields, explorer=dict(copy.deepcopy(rec.__dict__), **bad)), source="record")


def test_only_the_runs_the_page_shows_record_explorer_data():
    from shiftlab.study.config import StudyConfig
    from shiftlab.study.job import Job, shown_in_explorer

    config = StudyConfig(width=16, capacity_widths=(8,))
    assert shown_in_explorer(config, Job("strided_gap", "centred", 0))
    assert shown_in_explorer(config, Job("strided_gap", "circular", 0))
    assert not shown_in_explorer(config, Job("strided_gap", "centred", 1))  # the page shows seed 0
    assert not shown_in_explorer(config, Job("strided_gap", "centred", 0, width=8))  # capacity sweep
    assert not shown_in_explorer(config, Job("strided_gap", "transfer", 0))  # a new head, other classes
