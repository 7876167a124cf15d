"""One rule for integer ``--images``: any integer dtype must hold 0..255 and is divided by 255;
floats are used as they are; anything else is refused with the range found."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiftlab.cli.main import build_parser, main
from shiftlab.cli.measure import _read_images


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.uint16])
def test_every_integer_dtype_in_0_255_is_divided_by_255(tmp_path, dtype):
    values = np.arange(0, 256, dtype=np.int64).reshape(1, 16, 16).astype(dtype)
    path = tmp_path / "imgs.npy"
    np.save(path, values)
    images = _read_images(str(path), 10)
    assert images.dtype == torch.float32 and images.shape == (1, 1, 16, 16)
    assert images.min() == 0.0 and images.max() == 1.0
    assert torch.allclose(images.flatten(), torch.arange(256, dtype=torch.float32) / 255)


def test_pt_int64_is_treated_like_npy_uint8(tmp_path):
    data = torch.randint(0, 256, (4, 1, 8, 8))
    np.save(tmp_path / "a.npy", data.numpy().astype(np.uint8))
    torch.save(data, tmp_path / "b.pt")  # int64
    assert torch.equal(_read_images(str(tmp_path / "a.npy"), 4), _read_images(str(tmp_path / "b.pt"), 4))


@pytest.mark.parametrize("low,high", [(0, 1000), (-1, 10)])
def test_integers_outside_0_255_are_refused_with_the_range(tmp_path, capsys, low, high):
    path = tmp_path / "imgs.npy"
    np.save(path, np.array([[[low, high], [0, 1]]], dtype=np.int64))
    with pytest.raises(ValueError, match=rf"from {low} to {high}; integer images must lie in 0..255"):
        _read_images(str(path), 10)
    code = main(["measure", "examples/cnn.py:maxpool_cnn", "--images", str(path)])
    assert code == 2 and "must lie in 0..255" in capsys.readouterr().err


def test_floats_are_used_as_they_are(tmp_path):
    data = np.full((2, 1, 4, 4), 3.5, dtype=np.float64)
    np.save(tmp_path / "f.npy", data)
    images = _read_images(str(tmp_path / "f.npy"), 10)
    assert images.max() == 3.5


def test_the_rule_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["measure", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "integer values must lie in 0..255 and are divided by 255" in help_text
