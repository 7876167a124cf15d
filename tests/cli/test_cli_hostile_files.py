"""A code-execution pickle given as ``--images`` or ``--weights`` is refused (``weights_only``
loading) with one line, and its payload never runs (``docs/reliability.md``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from cli_helpers import ZERO, run


class Payload:
    """Unpickling this runs ``os.system("touch MARKER")`` (with a plain ``torch.load``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("option", ["--images", "--weights"])
def test_a_code_execution_pickle_is_refused_and_never_runs(capsys, tmp_path, option):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"x": Payload(marker)}, evil)
    args = ["--images", str(evil)] if option == "--images" else ["--input-shape", "1,28,28", "--weights", str(evil)]
    code, out, err = run(capsys, "measure", ZERO, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(evil) in lines[0] and "Weights only load failed" in lines[0]
    assert not marker.exists()


def test_a_npy_header_claiming_285_tib_is_one_line_without_the_allocation(capsys, tmp_path):
    evil = tmp_path / "huge.npy"
    with evil.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (2**22, 1, 2**22, 2)})
    code, _, err = run(capsys, "measure", ZERO, "--images", str(evil))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert f"{evil}: its header claims 281,474,976,710,656 bytes" in lines[0] and "MemoryError" not in lines[0]
