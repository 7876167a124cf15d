"""Reading results files (``shiftlab.study.results``): a config that ``StudyConfig`` would refuse
is refused when the file is read, before any reader (verdict, page, figures) uses its values."""

from __future__ import annotations

import json

import pytest

from shiftlab.study.config import StudyConfig
from shiftlab.study.records import SCHEMA_VERSION, RecordError
from shiftlab.study.results import load_results


def _write(tmp_path, config) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "config": config}))


@pytest.mark.parametrize("field, value", [("augment_range", "<b>4</b>"), ("width", -3), ("models", ["strided_gap", 3])])
def test_a_config_value_that_studyconfig_refuses_is_refused_on_reading(tmp_path, field, value):
    _write(tmp_path, dict(StudyConfig().to_dict(), **{field: value}))
    with pytest.raises(RecordError, match=rf"results.json has an invalid config: .*{field} must be"):
        load_results(tmp_path)


def test_a_valid_config_goes_on_to_the_rest_of_the_file(tmp_path):
    _write(tmp_path, StudyConfig().to_dict())
    with pytest.raises(RecordError, match=r"is not a valid results file \(KeyError: 'meta'\)"):
        load_results(tmp_path)


# Memory of reading hostile results files, measured in a fresh process (``tests/peak_rss.py``) at
# the full size of the bombs of issue 21. Before the limits, each of these took gigabytes.
SETUP = "from shiftlab.study.results import load_results"
MiB = 1 << 20


def _xz_of(path, head: bytes, unit: bytes, size: int, tail: bytes = b"") -> None:
    """``path``: ``head``, then ``unit`` repeated to ``size`` bytes, then ``tail``, compressed with
    xz chunk by chunk (the bomb is never held in memory whole)."""
    import lzma

    compressor = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=0)
    chunk = unit * (MiB // len(unit))
    with open(path, "wb") as f:
        f.write(compressor.compress(head))
        for _ in range(size // len(chunk)):
            f.write(compressor.compress(chunk))
        f.write(compressor.compress(tail) + compressor.flush())


def test_special_files_are_refused_before_anything_is_read(tmp_path):
    import os

    from peak_rss import peak_rss

    zero, fifo, xz = tmp_path / "zero", tmp_path / "fifo", tmp_path / "xz"
    for d in (zero, fifo, xz):
        d.mkdir()
    (zero / "results.json").symlink_to("/dev/zero")
    os.mkfifo(fifo / "results.json")  # no writer: reading it would block forever
    (xz / "results.json.xz").symlink_to("/dev/zero")
    reports = peak_rss(SETUP, [f"load_results({str(zero)!r})", f"load_results({str(fifo)!r})",
                               f"load_results({str(xz / 'results.json.xz')!r})"], call_timeout=10)
    kinds = ["a character device", "a FIFO", "a character device"]
    for report, kind in zip(reports, kinds, strict=True):
        assert report["outcome"].startswith("RecordError: ") and f"is not a regular file ({kind})" in report["outcome"]
        assert report["grew"] < 16 * MiB, report


def test_compression_bombs_stop_at_the_limit_while_decompressing(tmp_path):
    from peak_rss import peak_rss
    from shiftlab.study.results import MAX_RESULTS_BYTES

    nested, spaces = tmp_path / "nested.json.xz", tmp_path / "spaces.json.xz"
    _xz_of(nested, b"[", b"[],", 100 * MiB, b"[]]")  # 100 MiB of [[],[],...] in 15 KB (2.9 GB before)
    _xz_of(spaces, b"", b" ", 128 * MiB)  # a bomb of spaces (it took the whole cap before)
    assert nested.stat().st_size < 40_000
    reports = peak_rss(SETUP, [f"load_results({str(nested)!r})", f"load_results({str(spaces)!r})"])
    for report in reports:
        assert f"expands to more than {MAX_RESULTS_BYTES:,} bytes: not a results file" in report["outcome"], report
        assert report["grew"] < 1.5 * MAX_RESULTS_BYTES, report


def _worst_json(path, n_strings: int, n_objects: int, size: int) -> None:
    """A JSON file of ``size`` bytes made to take the most memory per byte: ``n_strings`` short
    strings (a Python object each), ``n_objects`` one-key objects (a dict each) and one long string
    with an escaped emoji (4 bytes per character in memory)."""
    strings = b'"ab",' * (n_strings - 1) + b'"ab"'
    objects = b'{"a":0},' * (n_objects - 1) + b'{"a":0}'
    head, tail = b'{"s":[' + strings + b'],"o":[' + objects + b'],"t":"\\ud83d\\ude00', b'"}'
    with open(path, "wb") as f:
        f.write(head)
        f.write(b"x" * (size - len(head) - len(tail)))
        f.write(tail)


def test_the_worst_file_within_the_limits_parses_within_the_stated_memory(tmp_path):
    from peak_rss import peak_rss
    from shiftlab.study.results import (
        MAX_RESULTS_BYTES,
        MAX_RESULTS_CONTAINERS,
        MAX_RESULTS_ITEMS,
        RESULTS_MEMORY_BOUND,
    )

    n_objects = MAX_RESULTS_CONTAINERS - 3  # each adds one container and two items
    worst, over = tmp_path / "worst.json", tmp_path / "over.json"
    _worst_json(worst, MAX_RESULTS_ITEMS - 2 * n_objects - 10, n_objects, MAX_RESULTS_BYTES)
    assert worst.stat().st_size == MAX_RESULTS_BYTES
    over.write_bytes(b"[" + b"[]," * (MAX_RESULTS_CONTAINERS + 1) + b"[]]")  # 1.5 MB: 29 MB of memory if parsed
    reports = peak_rss(SETUP, [f"load_results({str(worst)!r})", f"load_results({str(over)!r})"])
    assert "schema version" in reports[0]["outcome"], reports[0]  # parsed: valid JSON, not a results file
    assert reports[0]["grew"] < RESULTS_MEMORY_BOUND, reports[0]
    assert "more than a results file may" in reports[1]["outcome"] and reports[1]["grew"] < 16 * MiB, reports[1]


def test_a_plain_results_file_over_the_limit_and_non_ascii_bytes_are_refused_unread(tmp_path, monkeypatch):
    from shiftlab.study import results as results_module

    monkeypatch.setattr(results_module, "MAX_RESULTS_BYTES", 1000)
    (tmp_path / "results.json").write_bytes(b" " * 1001)
    with pytest.raises(RecordError, match="holds more than 1,000 bytes of JSON"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"schema_version": 2, "x": "\u00e9"}', encoding="utf-8")
    with pytest.raises(RecordError, match="not ASCII"):
        load_results(tmp_path)
    monkeypatch.setattr(results_module, "MAX_RESULTS_BYTES", 100_000)
    (tmp_path / "results.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(RecordError, match="nested too deeply"):
        load_results(tmp_path)
