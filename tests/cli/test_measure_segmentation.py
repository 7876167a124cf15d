"""``shiftlab measure MODEL --images X --masks Y``: a segmentation network's consistency by shift
distance, in a table and in the JSON, the same numbers as ``segmentation_shifts``; bad masks are
one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_helpers import run

from shiftlab.segmentation import segmentation_shifts

pytestmark = pytest.mark.usefixtures("one_thread")

UNET = """
import torch
from shiftlab.zoo import UNet


def build():
    torch.manual_seed(0)
    return UNet("aps", "aps", num_classes=3, width=4, levels=2, padding_mode="circular")
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "unet.py").write_text(UNET)
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((4, 1, 16, 16), dtype=np.float32))
    np.save(tmp_path / "m.npy", rng.integers(0, 3, size=(4, 16, 16)))
    return tmp_path


def test_an_exact_unet_agrees_at_every_distance_and_the_json_holds_the_api_numbers(capsys, files):
    code, out, err = run(capsys, "measure", f"{files / 'unet.py'}:build", "--images", str(files / "x.npy"),
                         "--masks", str(files / "m.npy"), "--mode", "circular", "--shifts", "2",
                         "--json", str(files / "out.json"))
    assert code == 0, err
    flat = " ".join(out.split())
    assert "Segmentation consistency (circular shifts, 4 images" in flat
    seg = json.loads((files / "out.json").read_text())["segmentation"]
    assert len(seg["shifts"]) == 25 and all(a == 1.0 for a in seg["agreement_by_shift"])
    assert all(v is None for v in seg["eq_t_db_by_shift"])  # exact: EQ-T inf at every circular shift
    exec(compile(UNET, "unet", "exec"), namespace := {})
    images = torch.from_numpy(np.load(files / "x.npy"))
    masks = torch.from_numpy(np.load(files / "m.npy"))
    api = segmentation_shifts(namespace["build"](), images, masks, [tuple(d) for d in seg["shifts"]], mode="circular")
    assert json.loads(json.dumps(api.to_dict())) == seg


@pytest.mark.parametrize("masks, message", [
    (np.zeros((4, 8, 8), dtype=np.int64), "need [4, 16, 16]"),
    (np.zeros((4, 16, 16), dtype=np.float32), "integer class indices [N, H, W]"),
    (np.zeros((3, 16, 16), dtype=np.int64), "one mask per image"),
])
def test_masks_that_do_not_fit_are_one_clear_error(capsys, files, masks, message):
    np.save(files / "bad.npy", masks)
    code, _, err = run(capsys, "measure", f"{files / 'unet.py'}:build", "--images", str(files / "x.npy"),
                       "--masks", str(files / "bad.npy"), "--shifts", "1")
    assert code == 2 and message in " ".join(err.split()), err


def test_masks_need_images(capsys, files):
    code, _, err = run(capsys, "measure", f"{files / 'unet.py'}:build", "--input-shape", "1,16,16",
                       "--masks", str(files / "m.npy"), "--shifts", "1")
    assert code == 2 and "--masks needs --images" in err
