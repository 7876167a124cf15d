"""Unpacking the explorer's packed arrays (``shiftlab.study.records.unpack_uint8``): never more is
inflated than the declared shape needs, so a zlib bomb in a results file costs no memory."""

from __future__ import annotations

import base64
import json
import lzma
import zlib
from pathlib import Path

import numpy as np
import pytest

from shiftlab.study.records import MAX_PACKED_VALUES, RecordError, pack_uint8, unpack_uint8

MiB = 1 << 20
PUBLISHED = Path(__file__).parents[2] / "docs" / "results" / "second-design" / "mnist-5k" / "results.json"


def zlib_of_zeros(n_chunks: int, chunk: int = 64 * MiB) -> bytes:
    """A valid zlib stream of ``n_chunks * chunk`` zero bytes, made by compressing one chunk (a
    full flush makes every chunk's deflate blocks the same bytes, so they repeat)."""
    compressor = zlib.compressobj(9)
    zeros = bytes(chunk)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(n_chunks):
        adler = zlib.adler32(zeros, adler)
    return first + again * (n_chunks - 1) + b"\x03\x00" + adler.to_bytes(4, "big")  # an empty last block


def test_a_zlib_bomb_in_the_explorer_data_is_refused_without_inflating_it(tmp_path):
    from peak_rss import peak_rss

    results = json.loads(PUBLISHED.read_text())
    run = next(r for r in results["runs"] if r.get("explorer"))
    run["explorer"]["classes"] = base64.b64encode(zlib_of_zeros(48)).decode("ascii")  # 3 GiB of zeros
    run_dir = tmp_path / "published"
    run_dir.mkdir()
    (run_dir / "results.json.xz").write_bytes(lzma.compress(json.dumps(results).encode("ascii")))
    assert (run_dir / "results.json.xz").stat().st_size < 200_000
    explorer = run["explorer"]
    fields = {k: explorer[k] for k in ("radius", "canvas_shape", "images", "labels", "confidence", "pixels")}
    setup = ("from shiftlab.study.results import load_results\nfrom shiftlab.study.records import ExplorerRecord\n"
             f"fields = {fields!r}\nbomb = {explorer['classes']!r}")
    reports = peak_rss(setup, [f"load_results({str(run_dir)!r})", "ExplorerRecord(classes=bomb, **fields)"],
                       timeout=180)
    for report in reports:  # before: 3.4 GB, then MemoryError
        assert "a packed array holds more than 7,056 values, its shape [16, 441] needs 7,056" in report["outcome"], report
        assert report["grew"] < 64 * MiB, report


def test_unpacking_inflates_at_most_the_shape_and_refuses_a_shape_too_large():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    text = pack_uint8(a)
    assert np.array_equal(unpack_uint8(text, (3, 4)), a)
    with pytest.raises(RecordError, match=r"holds more than 11 values, its shape \[11\] needs 11"):
        unpack_uint8(text, (11,))
    with pytest.raises(RecordError, match=r"holds 12 values, its shape \[13\] needs 13"):
        unpack_uint8(text, (13,))
    with pytest.raises(RecordError, match="damaged"):  # truncated: the end of the zlib stream is missing
        unpack_uint8(base64.b64encode(zlib.compress(a.tobytes())[:-6]).decode("ascii"), (3, 4))
    with pytest.raises(RecordError, match="damaged"):  # bytes after the end of the stream
        unpack_uint8(base64.b64encode(zlib.compress(a.tobytes()) + b"\0").decode("ascii"), (3, 4))
    huge = [MAX_PACKED_VALUES + 1]
    with pytest.raises(RecordError, match=f"more than the {MAX_PACKED_VALUES:,} values shiftlab unpacks"):
        unpack_uint8(text, huge)
    assert unpack_uint8(pack_uint8(np.zeros((0, 5), np.uint8)), (0, 5)).shape == (0, 5)
