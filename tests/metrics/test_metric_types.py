"""What a user's type checker reads from the metrics (``py.typed``; issue 24, item 5): each
``compute()`` returns its own type (the result, or a tensor: no subclass changes its parent's),
and torchmetrics' own keyword arguments are typed, so a misspelt or mistyped one is an error.

mypy checks a user's file against the installed package (about 1 s with mypy's cache warm from
a ``mypy`` run, about 25 s cold), in a process of its own: mypy raises the interpreter's recursion
limit for good, which would change what other tests see (a too-deeply nested JSON file parses)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]

USER_CODE = '''\
import torch
from torch import Tensor, nn
from typing_extensions import assert_type

from shiftlab import EquivarianceResult, InvarianceResult
from shiftlab.metrics import FlipRate, LayerEquivarianceError, ShiftConsistency, ShiftInvariance

assert_type(ShiftInvariance(3).compute(), InvarianceResult)
assert_type(ShiftConsistency(3, dist_sync_on_step=True).compute(), Tensor)
assert_type(FlipRate(3, 1, mode="zeros", batch_size="auto", sync_on_compute=False).compute(), Tensor)
layers = LayerEquivarianceError(nn.Identity(), torch.zeros(1, 1, 8, 8), process_group=None)
assert_type(layers.compute(), dict[str, Tensor] | EquivarianceResult)
ShiftConsistency(3, dist_sync_onstep=True)  # line 13: misspelt
ShiftConsistency(3, sync_on_compute="yes")  # line 14: not a bool
'''


def test_a_users_type_checker_sees_each_metrics_result_and_checks_torchmetrics_arguments(tmp_path):
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                          str(ROOT / ".mypy_cache"), "--follow-imports=silent", "--no-error-summary", str(user)],
                         capture_output=True, text=True, cwd=ROOT)
    out, err = run.stdout, run.stderr
    errors = sorted((int(line), code) for line, code in re.findall(r"user\.py:(\d+): error: .*\[([a-z-]+)\]$", out, re.M))
    assert errors == [(13, "call-arg"), (14, "arg-type")], out + err
    assert 'Unexpected keyword argument "dist_sync_onstep"' in out
