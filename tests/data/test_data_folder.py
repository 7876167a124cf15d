from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import shiftlab.data as sd


def write_folder(root: Path, size=(6, 5)) -> dict[str, list[np.ndarray]]:
    """root/<class>/<k>.png with RGB images of size (H, W); returns the pixels per class."""
    rng = np.random.default_rng(0)
    written = {}
    for count, name in zip((2, 3, 1), ("cat", "ant", "bee"), strict=True):
        (root / name).mkdir(parents=True)
        written[name] = []
        for k in range(count):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(root / name / f"{k}.png")
            written[name].append(pixels)
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    return written


def test_folder_rgb_round_trip(tmp_path):
    written = write_folder(tmp_path)
    ds = sd.load("folder", tmp_path)
    assert ds.classes == ["ant", "bee", "cat"]  # sorted, empty class skipped
    assert ds.labels.tolist() == [0, 0, 0, 1, 2, 2]
    expected = np.stack(written["ant"] + written["bee"] + written["cat"]).transpose(0, 3, 1, 2)
    assert ds.images.shape == (6, 3, 6, 5)
    assert torch.equal(ds.images, torch.from_numpy(expected / np.float32(255)))


def test_folder_grayscale_and_resize(tmp_path):
    written = write_folder(tmp_path)
    gray = sd.load("folder", tmp_path, channels=1)
    expected = np.asarray(Image.fromarray(written["ant"][0]).convert("L"))
    assert gray.images.shape == (6, 1, 6, 5)
    assert torch.equal(gray.images[0, 0], torch.from_numpy(expected / np.float32(255)))
    resized = sd.load("folder", tmp_path, channels=3, size=(4, 8))
    assert resized.images.shape == (6, 3, 4, 8)
    with pytest.raises(ValueError, match="channels"):
        sd.load("folder", tmp_path, channels=2)


def test_folder_mixed_sizes_need_size(tmp_path):
    write_folder(tmp_path)
    Image.fromarray(np.zeros((9, 9), dtype=np.uint8), "L").save(tmp_path / "bee" / "big.png")
    with pytest.raises(ValueError, match=r"different sizes.*\(9, 9\).*pass size="):
        sd.load("folder", tmp_path)
    ds = sd.load("folder", tmp_path, size=(6, 5))
    assert ds.images.shape == (7, 3, 6, 5)


def test_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="root/<class_name>/<image>.png"):
        sd.load("folder", tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError, match="no class sub-directory"):
        sd.load("folder", tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "not an image"])
def test_folder_names_an_image_it_cannot_read(tmp_path, damage):
    write_folder(tmp_path / "f")
    bad = tmp_path / "f" / "ant" / "1.png"
    content = bad.read_bytes()
    bad.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"plain text, not a PNG")
    with pytest.raises(ValueError, match=rf"{bad}: cannot read this image \(\w+Error: .*\); replace or remove the file"):
        sd.load("folder", tmp_path / "f")
