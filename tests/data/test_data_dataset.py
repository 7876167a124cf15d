import numpy as np
import pytest
import torch

from shiftlab.data.dataset import ImageDataset, select_split, to_unit_float


def make(labels: list[int], classes: int = 3) -> ImageDataset:
    n = len(labels)
    images = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous() / max(n, 1)
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), [f"c{k}" for k in range(classes)], "toy", "memory")


def test_validation_rejects_bad_shapes_and_labels():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        ImageDataset(torch.zeros(3, 4, 4), torch.zeros(3, dtype=torch.int64), ["a"], "x")
    with pytest.raises(TypeError, match="float32"):
        ImageDataset(torch.zeros(3, 1, 4, 4, dtype=torch.float64), torch.zeros(3, dtype=torch.int64), ["a"], "x")
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ImageDataset(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.int64), ["a"], "x")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), ["a"], "x")


def test_subset_keeps_order_and_metadata():
    ds = make([0, 1, 2, 0, 1, 2])
    sub = ds.subset([4, 1])
    assert sub.labels.tolist() == [1, 1]
    assert torch.equal(sub.images, ds.images[[4, 1]])
    assert (sub.classes, sub.name, sub.source) == (ds.classes, "toy", "memory")
    assert len(sub) == 2 and sub.image_shape == (1, 2, 2) and sub.num_classes == 3


def test_split_is_stratified_disjoint_and_seeded():
    ds = make([k % 3 for k in range(30)])
    train, test = ds.split(0.2, seed=1)
    assert len(train) + len(test) == 30
    assert test.labels.bincount(minlength=3).tolist() == [2, 2, 2]
    ids_train = set((train.images[:, 0, 0, 0] * 30).round().int().tolist())
    ids_test = set((test.images[:, 0, 0, 0] * 30).round().int().tolist())
    assert ids_train.isdisjoint(ids_test) and len(ids_train | ids_test) == 30
    assert sorted(ids_test) == list((test.images[:, 0, 0, 0] * 30).round().int())  # original order kept
    again = ds.split(0.2, seed=1)[1]
    other = ds.split(0.2, seed=2)[1]
    assert torch.equal(again.images, test.images)
    assert not torch.equal(other.images, test.images)
    with pytest.raises(ValueError):
        ds.split(1.0)


def test_head_is_class_balanced_and_in_original_order():
    ds = make([0] * 5 + [1] * 5 + [2] * 5)
    head = ds.head(7)
    assert head.labels.bincount().tolist() == [3, 2, 2]
    positions = (head.images[:, 0, 0, 0] * 15).round().int().tolist()
    assert positions == [0, 1, 2, 5, 6, 10, 11]
    assert len(ds.head(100)) == 15


def test_select_split_for_sources_without_official_split():
    ds = make([k % 2 for k in range(10)], classes=2)
    assert select_split(ds, None) is ds and select_split(ds, "all") is ds
    assert len(select_split(ds, "train")) == 8 and len(select_split(ds, "test")) == 2
    with pytest.raises(ValueError, match="split must be one of"):
        select_split(ds, "valid")


def test_to_unit_float_scales():
    out = to_unit_float(np.array([0, 8, 16], dtype=np.uint8), 16)
    assert out.dtype == torch.float32 and out.tolist() == [0.0, 0.5, 1.0]
