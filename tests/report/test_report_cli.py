"""`shiftlab report RUN_DIR`, run in-process through its parser."""

from __future__ import annotations

import argparse
import json

import pytest

from shiftlab.cli import report as report_cli


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shiftlab")
    sub = parser.add_subparsers(dest="command")
    report_cli.add_parser(sub)
    return parser.parse_args(["report", *argv])


def test_rebuilds_from_saved_results(run_dir, capsys):
    args = _args(str(run_dir), "--quiet")
    assert args.run is report_cli.run
    assert args.run(args) == 0
    assert (run_dir / "report.html").is_file() and (run_dir / "figures" / "consistency.svg").is_file()
    assert str(run_dir / "report.html") in capsys.readouterr().out


def test_verdict_only_writes_nothing(run_dir, capsys):
    args = _args(str(run_dir), "--verdict-only")
    assert report_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "C1" in out and "C7" in out and "Answer" in out
    assert not (run_dir / "report.html").exists() and not (run_dir / "figures").exists()


def test_missing_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json.*shiftlab study"):
        report_cli.run(_args(str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report_cli.run(_args(str(tmp_path / "nowhere")))


def test_corrupt_results(run_dir, synth):
    path = run_dir / "results.json"
    path.write_text('{"schema_version": 1, "runs": [', encoding="utf-8")
    with pytest.raises(ValueError, match="corrupt.*shiftlab study"):
        report_cli.run(_args(str(run_dir)))
    results = synth()
    results["schema_version"] = 99
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(ValueError, match="schema_version"):
        report_cli.run(_args(str(run_dir)))
    results = synth()
    del results["runs"][3]["periodicity"]
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(ValueError, match=r"runs\[3\].*periodicity"):
        report_cli.run(_args(str(run_dir)))
    results = synth()
    del results["runs"][2]["canvas"]["accuracy_by_shift"]
    path.write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(ValueError, match=r"runs\[2\]\.canvas.*accuracy_by_shift"):
        report_cli.run(_args(str(run_dir)))
    assert not (run_dir / "report.html").exists()


def test_help_mentions_usage():
    parser = argparse.ArgumentParser(prog="shiftlab")
    report_cli.add_parser(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "--help"])
