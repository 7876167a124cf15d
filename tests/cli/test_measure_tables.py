"""Tests of the tables ``shiftlab measure`` prints: the caution on degenerate predictions, the
per-layer "where" column (breaks here / inherited) and the notes under the per-layer table."""

from __future__ import annotations

import io
import json
import re
import runpy

import pytest
import torch
from cli_helpers import CIRC, CNN
from rich.console import Console
from torch import nn

import shiftlab as sl
from shiftlab.cli.main import main
from shiftlab.cli.tables import equivariance_notes, equivariance_table, invariance_table
from shiftlab.data import load

pytestmark = pytest.mark.usefixtures("one_thread")


def render(table, width: int = 200) -> str:
    """The table as plain text, on one line per row when ``width`` allows."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue()


def flat(text: str) -> str:
    """``text`` with line breaks and runs of spaces collapsed, to search wrapped output."""
    return re.sub(r"\s+", " ", text)


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.0, 4.0, 0.0], dtype=x.dtype).expand(x.shape[0], 3)


class Row(nn.Module):
    """The class is the row of the brightest pixel mod 3: predictions vary and move with shifts."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        row = x.sum(dim=1).flatten(1).argmax(dim=1) // x.shape[-1]
        return 5.0 * nn.functional.one_hot(row % 3, 3).to(x.dtype)


def row_images(n: int = 9) -> torch.Tensor:
    x = 0.5 * torch.rand(n, 1, 9, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for i in range(n):
        x[i, 0, i, (2 * i) % 9] = 1.0
    return x


def stack() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
    ).double().eval()


# --- invariance: the caution ----------------------------------------------------------------------


def test_invariance_table_shows_the_caution_for_a_constant_classifier():
    res = sl.invariance(Constant().eval(), row_images(), shifts=1)
    text = flat(render(invariance_table(res)))
    assert "caution: 100% of the 81 predictions are class 1: a near-constant classifier is trivially invariant" in text
    assert "most frequent class, share │ 1, 100.0%" in text
    assert "mean top-1 probability │" in text and "(uniform: 0.333)" in text


def test_invariance_table_has_no_caution_for_a_discriminating_model():
    res = sl.invariance(Row().eval(), row_images(), shifts=1)
    assert res.degenerate is None
    text = render(invariance_table(res))
    assert "caution" not in text and "most frequent class, share" in text


def test_trained_example_model_is_not_degenerate():
    model = runpy.run_path(str(CNN))["digits_cnn"](epochs=5)  # the README example trains 30 epochs
    data = load("digits", split="test").head(32)
    res = sl.invariance(model, data.images, data.labels, shifts=1)
    assert res.degenerate is None and res.accuracy > 0.5
    assert "caution" not in render(invariance_table(res))


# --- equivariance: where errors come from, and notes --------------------------------------------


def test_where_column_separates_breaks_from_inherited_errors():
    res = sl.equivariance(stack(), torch.randn(2, 1, 16, 16, dtype=torch.float64), shifts=4)
    text = render(equivariance_table(res, 1e-9))
    rows = {line.split("│")[0].strip(): line.split("│")[-1].strip() for line in text.splitlines() if "│" in line}
    assert rows["0 Conv2d"] == "equivariant" and rows["1 ReLU"] == "equivariant"
    assert rows["2 MaxPool2d"] == "breaks here: aliasing"
    assert rows["3 Conv2d"] == "inherited" and rows["4 ReLU"] == "inherited"
    assert rows["5 MaxPool2d"] == "breaks here: aliasing"  # shifts by 2 are aligned at stride 2, not at 4
    assert rows["6 AdaptiveAvgPool2d"] == "inherited"
    assert "where: 'breaks here' = the layer adds error (> 1.5x" in flat(text)
    assert "note:" not in text  # the shifts reach every stride but the global pool's


def test_notes_for_strides_beyond_the_shift_range():
    res = sl.equivariance(stack(), torch.randn(2, 1, 16, 16, dtype=torch.float64), shifts=1)
    notes = equivariance_notes(res)
    assert notes == [
        "layers 2 (MaxPool2d), 3 (Conv2d), 4 (ReLU): stride 2 > shift range 1, so no aligned errors ('-'); "
        "widen --shifts to 2 or more to see them",
        "layer 5 (MaxPool2d): stride 4 > shift range 1, so no aligned errors ('-'); widen --shifts to 4 or more to see "
        "them",
    ]  # none for the global pool (stride 16 = the image): no shift inside the image is aligned there
    text = flat(render(equivariance_table(res, 1e-9)))
    assert "note: layer 5 (MaxPool2d): stride 4 > shift range 1" in text


def test_note_when_every_shift_is_aligned():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1, padding_mode="circular")).double().eval()
    res = sl.equivariance(model, torch.randn(2, 1, 8, 8, dtype=torch.float64), shifts=[(0, 0), (2, 0), (2, -2)])
    assert equivariance_notes(res) == [
        "layer 0 (Conv2d): every shift of the set is a multiple of stride 2, so no unaligned errors ('-')"]


def test_note_for_downsampling_outside_modules():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
            self.b = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular")

        def forward(self, x):
            return self.b(nn.functional.max_pool2d(self.a(x), 4))

    res = sl.equivariance(Functional().double().eval(), torch.randn(2, 1, 16, 16, dtype=torch.float64), shifts=4)
    text = flat(render(equivariance_table(res, 1e-9)))
    assert ("note: stride jumps from 1 to 4 between a and b: downsampling outside modules (functional op in "
            "forward?)") in text


# --- on screen and in JSON from ``shiftlab measure`` ---------------------------------------------


def test_measure_prints_the_caution_and_where_labels(capsys, tmp_path):
    path = tmp_path / "out.json"
    code = main(["measure", CIRC, "--input-shape", "1,28,28", "-n", "8", "--shifts", "1", "--json", str(path)])
    out = flat(capsys.readouterr().out)
    assert code == 0
    assert "caution: 100% of the 72 predictions are class 0: a near-constant classifier is trivially invariant" in out
    assert "near-flat" in out
    assert "breaks" in out and "inherited" in out  # the "where" cells wrap at 80 columns
    assert "note: layer 5 (MaxPool2d): stride 4 > shift range 1" in out
    payload = json.loads(path.read_text())
    assert payload["invariance"]["degenerate"].startswith("100% of the 72 predictions are class 0")
    assert payload["invariance"]["class_counts"] == [72] + [0] * 9
    origins = [layer["origin"] for layer in payload["equivariance"]["layers"]]
    assert origins[:3] == ["equivariant", "equivariant", "breaks here: aliasing"] and origins[3] == "inherited"
