"""The shift explorer's data in Python (``explorer_table``) and in the page (``explorer_section``),
on the synthetic study of ``conftest.py`` given explorer records measured by ``explore`` on a
real (untrained, position-sensitive) network."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from shiftlab.report import ExplorerTable, explorer_table
from shiftlab.report.explorer import explorer_section
from shiftlab.study.conditions import condition
from shiftlab.study.measurements import explore
from shiftlab.study.results import write_results

N_IMAGES = 4


def _record(seed: int):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 48 * 48, 10)).eval()
    gen = torch.Generator().manual_seed(0)
    images = torch.zeros(N_IMAGES, 1, 48, 48)
    images[:, :, 14:34, 14:34] = torch.randint(0, 256, (N_IMAGES, 1, 20, 20), generator=gen) / 255
    return explore(net, images, torch.tensor([1, 1, 0, 0]), radius=10)  # chooses images 2, 0, 3, 1


@pytest.fixture(scope="module")
def results(full_results):
    """The synthetic study with explorer data: seed 0 and seed 1 measured by two different nets;
    the transfer runs and the capacity sweep (width 4) too, the probe runs not."""
    out = copy.deepcopy(full_results)
    records = {0: _record(0), 1: _record(1)}
    for r in out.runs:
        if not condition(r.condition).probe:
            r.explorer = records[r.seed]
    return out


def _payload(section: str) -> dict:
    match = re.search(r'<script type="application/json" id="xp-data">(.*?)</script>', section, re.S)
    assert match
    return json.loads(match.group(1))


def test_the_table_has_a_row_per_run_image_and_position_with_the_records_values(results):
    table = explorer_table(results)
    runs = [r for r in results.runs if r.explorer is not None]
    assert isinstance(table, ExplorerTable) and len(table) == len(runs) * N_IMAGES * 441
    run = next(r for r in runs if r.key == "strided_gap__centred__seed1")
    rows = table.key == run.key
    assert rows.sum() == N_IMAGES * 441
    classes = run.explorer.class_table()
    assert np.array_equal(table.predicted[rows], classes.reshape(-1))
    assert np.array_equal(table.probability[rows], run.explorer.probability_table().reshape(-1))
    positions = np.stack([table.dy[rows], table.dx[rows]], 1)
    assert np.array_equal(positions, np.tile(run.explorer.positions(), (N_IMAGES, 1)))
    assert np.array_equal(table.image[rows], np.repeat([2, 0, 3, 1], 441))  # indices in the evaluation set
    assert np.array_equal(table.label[rows], np.repeat([0, 1, 0, 1], 441))
    assert np.array_equal(table.correct[rows], (classes == np.array([[0], [1], [0], [1]])).reshape(-1))
    centre = classes[:, 220]  # (0, 0) is the middle of the 21 x 21 square
    assert np.array_equal(table.agrees[rows], (classes == centre[:, None]).reshape(-1))
    assert 0 < table.agrees[rows].sum() < rows.sum()
    aligned = {(int(a), int(b))
               for a, b, m in zip(table.dy[rows], table.dx[rows], table.multiple_of_stride[rows], strict=True) if m}
    assert aligned == {(a, b) for a in (-8, 0, 8) for b in (-8, 0, 8)}
    measured = {(int(a), int(b)) for a, b, m in zip(table.dy[rows], table.dx[rows], table.in_shift_set[rows], strict=True) if m}
    assert measured == {tuple(s) for s in run.profile.shifts}
    assert set(table.model[rows]) == {"strided_gap"} and set(table.seed[rows]) == {1} and set(table.width[rows]) == {8}


def test_the_table_as_csv_and_as_a_data_frame(results):
    table = explorer_table(results)
    text = table.to_csv()
    lines = text.splitlines()
    assert lines[0] == ",".join(table.columns()) and len(lines) == len(table) + 1
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert first["key"] == table.key[0] and int(first["dy"]) == -10 and float(first["probability"]) == pytest.approx(
        table.probability[0], abs=1e-6)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(table.columns())
    assert len(frame) == len(table) and list(frame.columns) == list(table.columns())
    assert frame.probability.between(0, 1).all() and frame.dtypes["predicted"] == np.int64


def test_the_table_reads_a_run_directory_and_says_how_to_get_missing_data(results, full_results, tmp_path):
    write_results(tmp_path, results)
    rows = len(explorer_table(results))
    assert len(explorer_table(tmp_path)) == len(explorer_table(tmp_path / "results.json")) == rows
    old = tmp_path / "old"
    old.mkdir()
    write_results(old, full_results)  # records from before the explorer
    with pytest.raises(ValueError, match=rf"shiftlab report {re.escape(str(old))} --explorer"):
        explorer_table(old / "results.json")


def test_the_page_shows_the_lowest_seed_of_each_model_and_condition_at_the_study_width(results):
    section = explorer_section(results)
    data = _payload(section)
    shown = {(r["model"], r["condition"], r["seed"]) for r in data["runs"]}
    cells = {(r.model, r.condition) for r in results.runs if r.condition in ("centred", "augmented", "circular")}
    assert shown == {(m, c, 0) for m, c in cells}  # no transfer, probe, capacity (width 4) or seed 1 runs
    assert len(data["runs"]) == len(shown)
    by_key = {(r.model, r.condition, r.seed): r for r in results.runs if r.width == 8}
    for shown_run in data["runs"]:
        ex = by_key[(shown_run["model"], shown_run["condition"], shown_run["seed"])].explorer
        assert (shown_run["classes"], shown_run["confidence"], shown_run["stride"]) == (ex.classes, ex.confidence, 8)
    assert data["pixels"] == results.runs[0].explorer.pixels
    assert data["labels"] == [0, 1, 0, 1] and data["images"] == [2, 0, 3, 1]
    assert "image 2 of the evaluation set: 0</option>" in section
    assert data["radius"] == 10 and data["canvas"] == [1, 48, 48] and data["classes"] == [str(i) for i in range(10)]
    assert data["default_models"] == ["strided_gap", "blurstrided_gap", "maxpool_fc"]
    assert data["default_condition"] == "centred"
    assert '<section id="explorer">' in section and 'id="xp-canvas" tabindex="0"' in section
    assert "DecompressionStream" in section and "http://" not in section and "https://" not in section
    for control in ("xp-condition", "xp-image", "xp-dy", "xp-dx"):
        assert f'<label for="{control}">' in section  # every control is labelled
    assert section.count('<input type="checkbox" name="xp-model"') == len({m for m, _ in cells})
    # every model's checkbox names its layers (the zoo's description), roles or not
    assert '<label title="conv3x3-BN-ReLU-BlurPool2d(stride 2) x3, flatten, Linear"><input type="checkbox" ' \
           'name="xp-model" value="blurstrided_fc">' in section


def test_a_missing_lowest_seed_falls_back_to_the_next(results):
    partial = copy.deepcopy(results)
    for r in partial.runs:
        if r.model == "maxpool_fc" and r.seed == 0:
            r.explorer = None
    seeds = {(r["model"], r["condition"]): r["seed"] for r in _payload(explorer_section(partial))["runs"]}
    assert seeds[("maxpool_fc", "centred")] == 1 and seeds[("strided_gap", "centred")] == 0


def test_a_study_without_explorer_data_gets_a_note_and_no_script(full_results):
    section = explorer_section(full_results)
    assert section.startswith('<section id="explorer">') and "<script" not in section
    assert "shiftlab report RUN_DIR --explorer" in section and "checkpoints" in section


def test_hostile_text_in_results_json_stays_text(results):
    evil = '</script><script>alert("x")</script><!--<img src=x onerror=alert(1)>'
    hostile = copy.deepcopy(results)
    hostile.meta.classes[0] = evil
    for r in hostile.runs:
        if r.model == "strided_fc":
            r.model = evil
    section = explorer_section(hostile)
    assert "<script>alert" not in section and "<img src=x" not in section and "<!--" not in section
    assert section.count("<script") == 2 and section.count("</script>") == 2  # the data block and the code
    data = _payload(section)
    assert data["classes"][0] == evil and evil in {m["id"] for m in data["models"]}  # read back as text
