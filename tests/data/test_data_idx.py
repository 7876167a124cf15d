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


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path, arrays):
    (images, _), _ = arrays
    header = idx_bytes(images)[: 4 + 12]  # a valid header for these images ...
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as f:  # ... followed by 200 MB of zeros (compresses to ~200 kB)
        f.write(header)
        for _ in range(200):
            f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        read_idx(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * images.nbytes + (1 << 20)  # the header's payload plus a byte, not 200 MB


@pytest.mark.parametrize("shape", [(2**31, 2**31, 2**31), (2**32 - 1, 2**32 - 1, 2**32 - 1, 2**32 - 1), (1 << 30, 64, 64)])
def test_a_header_claiming_too_much_is_refused_before_reading(tmp_path, shape):
    data = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + b"\x00" * 16
    for gz in (False, True):
        path = tmp_path / f"forged{len(shape)}{gz}"
        path.write_bytes(gzip.compress(data) if gz else data)
        with pytest.raises(IdxFormatError, match="more than the .* bytes shiftlab reads"):
            read_idx(path)


def test_a_wrapping_dimension_product_is_not_zero():
    # 2^32 * 2^32 wraps to 0 in 64-bit arithmetic; exact integers see the real size
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 1 << 16, 1 << 16, 1 << 16)
    with pytest.raises(IdxFormatError, match="more than"):
        parse_idx(data)


@pytest.mark.parametrize("label", [2**31 - 1, 50_000_000, -1])
def test_a_label_value_cannot_make_millions_of_classes(tmp_path, arrays, label):
    (images, labels), _ = arrays
    labels = labels.astype(np.int32)
    labels[0] = label
    root = tmp_path / "idx"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte", images, gz=False)
    (root / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels, 0x0C))
    with pytest.raises(IdxFormatError, match="label values must be class indices 0..99999"):
        sd.load("idx", root)


def test_images_of_zero_pixels_are_refused(tmp_path):
    root = tmp_path / "idx"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte", np.zeros((3, 0, 0), np.uint8), gz=False)
    write_idx(root / "train-labels-idx1-ubyte", np.zeros(3, np.uint8), gz=False)
    with pytest.raises(IdxFormatError, match="size 0x0"):
        sd.load("idx", root)
