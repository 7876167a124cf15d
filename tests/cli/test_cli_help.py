"""Help texts and documented commands: each sub-command listed once, no name broken mid-word, the
README's examples write under the ignored runs/ and state no marker that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shiftlab.cli.main import main
from shiftlab.zoo import names as zoo_names

ROOT = Path(__file__).resolve().parents[2]


def help_of(capsys, monkeypatch, *argv: str, columns: int = 80) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_top_level_help_lists_each_command_once(capsys, monkeypatch, columns):
    text = help_of(capsys, monkeypatch, columns=columns)
    for command in ("study", "measure", "report"):
        assert len(re.findall(rf"^\s+{command}\s", text, flags=re.M)) == 1, text
    assert "--debug" in text


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_model_names_are_not_broken_across_lines(capsys, monkeypatch, columns):
    text = help_of(capsys, monkeypatch, "study", columns=columns)
    words = set(re.findall(r"[a-z_]+", text))
    for name in zoo_names():
        assert name in words, f"{name} is broken in:\n{text}"


def test_every_command_takes_debug(capsys, monkeypatch):
    for command in ("study", "measure", "report"):
        assert "--debug" in help_of(capsys, monkeypatch, command)


def test_readme_and_help_examples_write_json_under_ignored_runs(capsys, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    measure_help = help_of(capsys, monkeypatch, "measure", columns=200)
    for text in (readme, measure_help):
        paths = re.findall(r"--json ([\w./-]+\.json)", text)
        assert paths
        for path in paths:
            assert path.startswith("runs/"), path
    assert "runs/" in (ROOT / ".gitignore").read_text().split()

