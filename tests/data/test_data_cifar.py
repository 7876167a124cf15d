import os
import pickle
import resource
from pathlib import Path

import numpy as np
import pytest
import torch

import shiftlab.data as sd
from shiftlab.data.cifar import _NUMPY_CORE

np_multiarray = __import__(f"{_NUMPY_CORE}.multiarray", fromlist=["_reconstruct"])

LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def write_batch(path: Path, data: np.ndarray, labels: list[int], protocol: int = 2) -> None:
    """A batch as the real python version has it: a pickled dict with bytes keys."""
    batch = {
        b"batch_label": path.name.encode(),
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{k}.png".encode() for k in range(len(labels))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def write_cifar(root: Path, per_batch: int = 3, protocol: int = 2) -> tuple[list[np.ndarray], list[list[int]]]:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    datas, labels = [], []
    for k, name in enumerate([f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        label = [(k + j) % 10 for j in range(per_batch)]
        write_batch(root / name, data, label, protocol)
        datas.append(data)
        labels.append(label)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": LABEL_NAMES, b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return datas, labels


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_round_trip(tmp_path, protocol):
    datas, labels = write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    train = sd.load("cifar10", tmp_path)  # the parent of cifar-10-batches-py is accepted
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.float32
    assert train.labels.tolist() == sum(labels[:5], [])
    assert train.classes == [name.decode() for name in LABEL_NAMES]
    # channel-major rows: first 1024 values red, next green, then blue, each 32x32 row major
    first = datas[0][0]
    assert torch.equal(train.images[0, 1, 2, 3], torch.tensor(first[1024 + 2 * 32 + 3] / np.float32(255)))
    assert torch.equal(train.images, torch.from_numpy(np.concatenate(datas[:5]).reshape(-1, 3, 32, 32) / np.float32(255)))
    test = sd.load("cifar10", tmp_path / "cifar-10-batches-py", split="test")
    assert test.labels.tolist() == labels[5] and len(sd.load("cifar10", tmp_path, split="all")) == 18


def test_cifar_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        sd.load("cifar10")
    with pytest.raises(FileNotFoundError, match="pass root= the cifar-10-batches-py directory"):
        sd.load("cifar10", tmp_path)
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        sd.load("cifar10", tmp_path / "c")
    assert len(sd.load("cifar10", tmp_path / "c", split="test")) == 3


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_refuses_arbitrary_pickled_objects(tmp_path):
    write_cifar(tmp_path / "c")
    (tmp_path / "c" / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(ValueError, match="refusing to load posix.system from a CIFAR batch"):
        sd.load("cifar10", tmp_path / "c", split="test")


class HugeArray:
    """``_reconstruct(ndarray, shape, dtype)`` allocates ``shape`` uninitialised: 145 bytes of
    pickle would ask for 4 GiB (a 2**20-byte subarray dtype times 4,096)."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype

    def __reduce__(self):
        return (np_multiarray._reconstruct, (np.ndarray, self.shape, self.dtype))


@pytest.mark.parametrize("shape, dtype", [((2**32,), "u1"), ((4096,), np.dtype(("u1", (2**20,))))])
def test_cifar_refuses_an_array_larger_than_its_file(tmp_path, shape, dtype):
    write_cifar(tmp_path / "c")
    path = tmp_path / "c" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": HugeArray(shape, np.dtype(dtype)), b"labels": []}, protocol=2))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=rf"{path.name}.*refusing an array of 4,294,967,296 bytes from a file of"):
        sd.load("cifar10", tmp_path / "c", split="test")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB: nothing was touched


def test_cifar_refuses_a_malformed_array_shape(tmp_path):
    write_cifar(tmp_path / "c")
    path = tmp_path / "c" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": HugeArray((-1,), np.dtype("u1")), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"refusing an array of shape \(-1,\)"):
        sd.load("cifar10", tmp_path / "c", split="test")


def test_cifar_rejects_wrong_layout(tmp_path):
    write_cifar(tmp_path / "c")
    write_batch(tmp_path / "c" / "test_batch", np.zeros((2, 100), dtype=np.uint8), [0, 1])
    with pytest.raises(ValueError, match="3072"):
        sd.load("cifar10", tmp_path / "c", split="test")


def test_cifar_reads_batches_pickled_by_old_numpy(tmp_path):
    """The real batches name numpy.core.multiarray (numpy < 2), which numpy 2 renamed."""
    datas, labels = write_cifar(tmp_path / "c")
    path = tmp_path / "c" / "test_batch"
    old = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old
    path.write_bytes(old)
    test = sd.load("cifar10", tmp_path / "c", split="test")
    assert torch.equal(test.images, torch.from_numpy(datas[5].reshape(-1, 3, 32, 32) / np.float32(255)))
