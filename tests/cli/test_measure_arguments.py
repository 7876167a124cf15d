"""``shiftlab measure`` arguments and failures named for what they are (issue 21, cases 13, 14):
a negative or zero ``-n`` is refused (it measured 7 of 10 images for ``-n -3``, or failed with
"negative dimension"), and a CPU out-of-memory error says so with the fix (it read "the model
failed ... check that the images fit the model": only CUDA's wording was recognised)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import ZERO, run


@pytest.mark.parametrize("n", ["-3", "0", "-5"])
def test_a_number_of_images_below_one_is_refused(tmp_path, capsys, n):
    np.save(tmp_path / "ten.npy", np.random.default_rng(0).random((10, 1, 28, 28), dtype=np.float32))
    for source in (["--images", str(tmp_path / "ten.npy")], ["--input-shape", "1,28,28"]):
        with pytest.raises(SystemExit) as exit_:
            run(capsys, "measure", ZERO, *source, "-n", n)
        assert exit_.value.code == 2
        assert f"argument -n/--num-images: must be a positive integer, got '{n}'" in capsys.readouterr().err


HUNGRY = """
import torch
from torch import nn


class Hungry(nn.Module):
    def forward(self, x):
        torch.empty(2**44)  # 64 TiB of floats: no CPU has it
        return x.flatten(1)[:, :3]


def build():
    return Hungry()
"""


def test_a_cpu_out_of_memory_error_says_so_and_how_to_fix_it(tmp_path, capsys):
    (tmp_path / "hungry.py").write_text(HUNGRY)
    code, _, err = run(capsys, "measure", f"{tmp_path / 'hungry.py'}:build", "--input-shape", "1,8,8", "-n", "2",
                       "--shifts", "1", "--device", "cpu")
    assert code == 2
    line = " ".join(err.split())
    assert line.startswith("shiftlab measure: error: out of memory in the model's forward pass on the CPU ("), line
    assert "use a smaller --batch-size (or fewer, smaller images)" in line and "check that the images" not in line, line
