"""Property tests of every reader of a results file (``load_results``: ``results.json``,
``results.json.xz``, the records in it, the explorer's packed arrays): whatever the bytes, the
reader returns results or raises :class:`RecordError` (a ``ValueError`` naming the file), never
another exception. Memory is bounded separately, with the bombs at full size
(``tests/study/test_study_results.py``, ``tests/study/test_study_records.py``)."""

from __future__ import annotations

import base64
import json
import lzma
import os
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiftlab.study.records import RecordError, unpack_uint8
from shiftlab.study.results import StudyResults, load_results

#: ``derandomize``: the same examples on every machine and run; ``SHIFTLAB_FUZZ_RANDOM=1`` explores new ones.
FUZZ = settings(max_examples=200, deadline=None, derandomize="SHIFTLAB_FUZZ_RANDOM" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=24)
RUN_FIELDS = ["key", "model", "downsampling", "head", "padding", "condition", "seed", "width", "params", "macs",
              "receptive_field", "total_stride", "training", "summary", "profile", "periodicity", "equivariance",
              "explorer", "seconds"]


def _read(tmp_path, payload: bytes, compressed: bool) -> object:
    """``load_results`` of ``payload`` written as the run directory's results file."""
    for name in ("results.json", "results.json.xz"):
        (tmp_path / name).unlink(missing_ok=True)
    name = "results.json.xz" if compressed else "results.json"
    (tmp_path / name).write_bytes(lzma.compress(payload) if compressed else payload)
    try:
        return load_results(tmp_path)
    except RecordError as err:
        assert str(tmp_path) in str(err)  # names the file
        return err


@FUZZ
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_are_a_record_error(tmp_path, payload, compressed):
    assert isinstance(_read(tmp_path, payload, compressed), RecordError)


@FUZZ
@given(JSON, st.booleans())
def test_random_json_is_a_record_error(tmp_path, value, compressed):
    assert isinstance(_read(tmp_path, json.dumps(value).encode("ascii"), compressed), RecordError)


PUBLISHED_RESULTS = Path(__file__).parents[2] / "docs" / "results" / "second-design" / "mnist-5k" / "results.json"
PUBLISHED = json.loads(PUBLISHED_RESULTS.read_text())
REAL_RUN = next(r for r in PUBLISHED["runs"] if r.get("explorer"))


@FUZZ
@given(st.dictionaries(st.sampled_from(RUN_FIELDS + ["meta", "analysis", "config"]), JSON, max_size=4),
       st.booleans())
def test_a_real_file_with_random_parts_is_results_or_a_record_error(tmp_path, replaced, compressed):
    run = dict(REAL_RUN, **{k: v for k, v in replaced.items() if k in RUN_FIELDS})
    payload = dict(PUBLISHED, runs=[run], **{k: v for k, v in replaced.items() if k not in RUN_FIELDS})
    read = _read(tmp_path, json.dumps(payload).encode("ascii"), compressed)
    assert isinstance(read, (RecordError, StudyResults))


def test_the_file_the_random_parts_replace_reads(tmp_path):
    assert isinstance(_read(tmp_path, json.dumps(dict(PUBLISHED, runs=[REAL_RUN])).encode("ascii"), True), StudyResults)


def _packed(draw_bytes: bytes, how: str) -> str:
    if how == "zlib":
        return base64.b64encode(zlib.compress(draw_bytes)).decode("ascii")
    if how == "base64":
        return base64.b64encode(draw_bytes).decode("ascii")
    return draw_bytes.decode("latin-1")


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(["zlib", "base64", "text"]),
       st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_random_packed_arrays_unpack_to_their_shape_or_are_a_record_error(payload, how, shape):
    try:
        array = unpack_uint8(_packed(payload, how), shape)
    except RecordError:
        return
    assert array.dtype == np.uint8 and array.shape == tuple(shape) and array.tobytes() == payload
