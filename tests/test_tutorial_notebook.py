"""docs/tutorial.ipynb as committed: executed top to bottom with its outputs stored (the site renders
them without running it), small, and free of anything tied to the machine that ran it.

CI executes it separately (``pytest --nbmake docs/tutorial.ipynb``); these checks read the file only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
#: The committed notebook, outputs included, stays under this size (PNG figures at 72 dpi).
MAX_BYTES = 1_000_000
#: Its figures: shifted digits, the per-layer profile, the profile after the fix, accuracy by
#: distance, accuracy maps and class maps.
MIN_FIGURES = 6
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/home/|/root/|/tmp/|/work/|/Users/|[A-Za-z]:\\\\)")


@pytest.fixture(scope="module")
def notebook() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _outputs_text(cell: dict) -> str:
    return json.dumps(cell.get("outputs", []))


def test_every_code_cell_ran_once_in_order(notebook):
    """Execution counts 1, 2, 3, ...: one fresh kernel ran every cell top to bottom, none was skipped or rerun."""
    counts = [cell["execution_count"] for cell in _code_cells(notebook)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"execution counts {counts}: re-execute the whole notebook "
        "(jupyter nbconvert --execute --to notebook --inplace docs/tutorial.ipynb)")


def test_outputs_are_stored_without_errors(notebook):
    cells = _code_cells(notebook)
    silent = [i for i, cell in enumerate(cells) if not cell["outputs"]]
    assert silent == [0], f"code cells {silent} have no stored output (only the imports should be silent): re-execute it"
    for cell in cells:
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"a cell raised {output.get('ename')}: {output.get('evalue')}"
            assert not (output["output_type"] == "stream" and output["name"] == "stderr"), (
                f"a cell wrote to stderr (a warning?): {''.join(output['text'])[:300]}")
    figures = sum("image/png" in output.get("data", {}) for cell in cells for output in cell["outputs"])
    assert figures >= MIN_FIGURES, f"{figures} PNG figures stored, expected at least {MIN_FIGURES}"


def test_stored_results_show_what_the_text_says(notebook):
    """The prose reads the stored summary: the blurred network is the most consistent of the four models."""
    table = next(text for text in ("".join(o.get("text", "")) for c in _code_cells(notebook) for o in c["outputs"])
                 if text.startswith("model") and "aps" in text)
    consistency = {line.split()[0]: float(line.split()[4]) for line in table.splitlines()[1:]}
    assert set(consistency) == {"pretrained", "fine-tuned", "blur", "aps"}
    assert max(consistency, key=consistency.get) == "blur", consistency


def test_small_and_machine_independent(notebook):
    size = NOTEBOOK.stat().st_size
    assert size < MAX_BYTES, f"docs/tutorial.ipynb is {size:,} bytes; lower the figures' dpi or their number"
    for cell in notebook["cells"]:
        text = "".join(cell["source"]) + _outputs_text(cell)
        assert not ABSOLUTE_PATH.search(text), f"an absolute path in a cell: {ABSOLUTE_PATH.search(text).group(0)!r}"
        assert "execution" not in cell.get("metadata", {}), "cell timing metadata: strip it (it changes every run)"
