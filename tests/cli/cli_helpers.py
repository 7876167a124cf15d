"""What the CLI tests share: the example models and running ``shiftlab`` in-process."""

from __future__ import annotations

from pathlib import Path

from shiftlab.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "examples" / "cnn.py"
ZERO = f"{CNN}:maxpool_cnn"
CIRC = f"{CNN}:maxpool_cnn_circular"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``shiftlab ARGV`` through ``main()``: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
