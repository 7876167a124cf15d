"""``shiftlab report RUN_DIR`` through the real entry point: output, and one-line errors."""

from __future__ import annotations

import json

from shiftlab.cli.main import main


def test_rebuilds_from_saved_results(run_dir, capsys):
    assert main(["report", str(run_dir), "--quiet"]) == 0
    assert (run_dir / "report.html").is_file() and (run_dir / "figures" / "consistency.svg").is_file()
    assert str(run_dir / "report.html") in capsys.readouterr().out


def test_verdict_only_writes_nothing(run_dir, capsys):
    assert main(["report", str(run_dir), "--verdict-only"]) == 0
    out = capsys.readouterr().out
    assert "Answer" in out and "C1" in out and "C9" in out
    assert not (run_dir / "report.html").exists() and not (run_dir / "figures").exists()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("shiftlab report: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_run_dir_or_results(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in _one_line_error(capsys)
    assert main(["report", str(tmp_path)]) == 2
    assert "results.json not found" in _one_line_error(capsys)


def test_damaged_results(run_dir, capsys):
    path = run_dir / "results.json"
    good = json.loads(path.read_text())
    path.write_text('{"schema_version": 2, "runs": [')
    assert main(["report", str(run_dir)]) == 2
    assert "damaged" in _one_line_error(capsys)
    path.write_text(json.dumps(dict(good, schema_version=1)))
    assert main(["report", str(run_dir), "--verdict-only"]) == 2
    assert "schema version 1" in _one_line_error(capsys)
    del good["runs"][0]["training"]
    path.write_text(json.dumps(good))
    assert main(["report", str(run_dir)]) == 2
    assert "not a valid run record" in _one_line_error(capsys)
    assert not (run_dir / "report.html").exists()


def test_a_published_run_compressed_with_xz_rebuilds_the_same_page(run_dir, tmp_path, capsys):
    import lzma

    assert main(["report", str(run_dir), "--quiet"]) == 0
    published = tmp_path / "docs" / run_dir.name  # the page names its directory: the same name
    published.mkdir(parents=True)
    (published / "results.json.xz").write_bytes(lzma.compress((run_dir / "results.json").read_bytes()))
    assert main(["report", str(published), "--quiet"]) == 0
    page = (published / "report.html").read_text()
    assert page.replace(str(published), str(run_dir)) == (run_dir / "report.html").read_text()  # its rebuild command
    assert main(["report", str(published / "results.json.xz"), "--verdict-only"]) == 2  # RUN_DIR, not the file
    capsys.readouterr()


def test_a_damaged_or_hostile_xz_file_is_an_error_that_says_so(run_dir, tmp_path, capsys, monkeypatch):
    import lzma

    from shiftlab.study import results as results_module

    published = tmp_path / "published"
    published.mkdir()
    whole = lzma.compress((run_dir / "results.json").read_bytes())
    (published / "results.json.xz").write_bytes(whole[: len(whole) // 2])
    assert main(["report", str(published)]) == 2
    assert "damaged" in _one_line_error(capsys) and not (published / "report.html").exists()
    (published / "results.json.xz").write_bytes(b"not xz at all")
    assert main(["report", str(published)]) == 2
    assert "damaged" in _one_line_error(capsys)
    (published / "results.json.xz").write_bytes(lzma.compress(b" " * 5000))  # a bomb, scaled down
    monkeypatch.setattr(results_module, "MAX_RESULTS_BYTES", 4096)
    assert main(["report", str(published)]) == 2
    assert "expands to more than 4,096 bytes" in _one_line_error(capsys)


def test_a_lock_or_figures_folder_linked_out_of_the_run_directory_is_refused(run_dir, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("DATA\n")
    (run_dir / ".lock").symlink_to(victim)
    assert main(["report", str(run_dir), "--explorer"]) == 2
    assert f"{run_dir / '.lock'} is a symbolic link" in _one_line_error(capsys)
    assert victim.read_text() == "DATA\n"
    (run_dir / ".lock").unlink()
    (outside / "aliasing.png").write_bytes(b"theirs")
    (run_dir / "figures").symlink_to(outside)
    assert main(["report", str(run_dir), "--quiet"]) == 2
    assert "leads out of the run directory" in _one_line_error(capsys)
    assert sorted(p.name for p in outside.iterdir()) == ["aliasing.png", "victim.txt"]
    assert (outside / "aliasing.png").read_bytes() == b"theirs" and not (run_dir / "report.html").exists()
