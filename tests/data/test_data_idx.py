import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import shiftlab.data as sd
from shiftlab.data.idx import IdxFormatError, parse_idx, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """The IDX encoding of ``array``, written independently of the reader."""
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    return bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big_endian.tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool) -> Path:
    data = idx_bytes(array)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_split(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *, gz: bool) -> None:
    write_idx(root / f"{prefix}-images-idx3-ubyte", images, gz=gz)
    write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, gz=gz)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8), np.array([0, 1, 2, 3, 1, 0], dtype=np.uint8)
    test = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8), np.array([3, 2, 1], dtype=np.uint8)
    return train, test


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, arrays, gz):
    (train_x, train_y), (test_x, test_y) = arrays
    write_split(tmp_path, "train", train_x, train_y, gz=gz)
    write_split(tmp_path, "t10k", test_x, test_y, gz=gz)
    train = sd.load("idx", tmp_path)
    assert train.images.shape == (6, 1, 5, 4) and train.images.dtype == torch.float32
    assert torch.equal(train.images, torch.from_numpy(train_x[:, None].astype(np.float32) / 255))
    assert train.labels.tolist() == train_y.tolist() and train.labels.dtype == torch.int64
    assert train.classes == ["0", "1", "2", "3"] and train.name == "idx"
    test = sd.load("idx", tmp_path, split="test", classes=["a", "b", "c", "d"])
    assert torch.equal(test.images[:, 0], torch.from_numpy(test_x / np.float32(255)))
    assert test.classes == ["a", "b", "c", "d"]
    everything = sd.load("idx", tmp_path, split="all")
    assert everything.labels.tolist() == train_y.tolist() + test_y.tolist()


def test_alternative_file_spelling(tmp_path, arrays):
    (x, y), _ = arrays
    write_idx(tmp_path / "train-images.idx3-ubyte", x, gz=False)
    write_idx(tmp_path / "train-labels.idx1-ubyte", y, gz=True)
    assert sd.load_idx(tmp_path).labels.tolist() == y.tolist()


@pytest.mark.parametrize(
    ("array", "code"),
    [
        (np.arange(-3, 3, dtype=np.int8).reshape(2, 3), 0x09),
        (np.array([-300, 0, 300], dtype=np.int16), 0x0B),
        (np.array([[1 << 20, -5]], dtype=np.int32), 0x0C),
        (np.array([0.5, -1.25], dtype=np.float32), 0x0D),
        (np.array([1e300], dtype=np.float64), 0x0E),
    ],
)
def test_parse_idx_all_types_big_endian(array, code):
    out = parse_idx(idx_bytes(array, code))
    assert out.dtype == array.dtype and np.array_equal(out, array)
    assert out.dtype.byteorder in "=|"


def test_wrong_magic_is_a_clear_error(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"x")  # unknown type code
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(path)


def test_truncated_files_are_clear_errors(tmp_path, arrays):
    (x, _), _ = arrays
    data = idx_bytes(x)
    path = tmp_path / "images"
    path.write_bytes(data[:-7])
    with pytest.raises(IdxFormatError, match="truncated.*120 data bytes.*113"):
        read_idx(path)
    path.write_bytes(data[:9])
    with pytest.raises(IdxFormatError, match="truncated IDX header"):
        read_idx(path)
    path.write_bytes(data + b"\x00")
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        read_idx(path)
    path.write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(IdxFormatError, match="gzip"):
        read_idx(path)


def test_images_and_labels_must_agree(tmp_path, arrays):
    (x, y), _ = arrays
    write_split(tmp_path, "train", x, y[:-1], gz=False)
    with pytest.raises(IdxFormatError, match="6 images but .* 5 labels"):
        sd.load_idx(tmp_path)


def test_missing_files_say_how_to_get_them(tmp_path, arrays):
    (x, y), _ = arrays
    with pytest.raises(FileNotFoundError, match="Pass root= a directory holding the IDX files"):
        sd.load("idx")
    with pytest.raises(FileNotFoundError, match="no such directory"):
        sd.load("idx", tmp_path / "nope")
    write_split(tmp_path, "train", x, y, gz=True)
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\]"):
        sd.load("idx", tmp_path, split="test")
