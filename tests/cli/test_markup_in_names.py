"""Layer names are printed as they are (issue 21, case 8): a module named ``[/nope]`` crashed the
last line of ``shiftlab measure`` with rich's ``MarkupError`` (exit 2, no ``--json`` file) and
``[link=...]click[/link]`` printed as "click"."""

from __future__ import annotations

import json

from cli_helpers import run

MODEL = """
from torch import nn


def build():
    net = nn.Sequential()
    net.add_module("[link=https://example]click[/link]", nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"))
    net.add_module("[/nope]", nn.MaxPool2d(2))
    net.add_module("[bold]gap", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("[red]fc", nn.Linear(4, 3))
    return net
"""


def test_layer_names_holding_rich_markup_are_printed_as_they_are(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "m[x].py").write_text(MODEL)
    out_json = tmp_path / "out.json"
    code, out, err = run(capsys, "measure", f"{tmp_path / 'm[x].py'}:build", "--input-shape", "1,8,8", "-n", "2",
                         "--shifts", "1", "--tol", "0", "--json", str(out_json))
    assert code == 0, err
    assert "[/nope] MaxPool2d" in out and "[link=https://example]click[/link] Conv2d" in out, out
    assert "First layer to break equivariance (> 0): [/nope] (MaxPool2d)" in " ".join(out.split()), out
    assert "[red]fc (Linear" in out and "m[x].py:build" in out, out
    assert json.loads(out_json.read_text())["equivariance"]["layers"]
