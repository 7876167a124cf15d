"""A study's results as typed objects: ``results.json`` (config, provenance, every run, the
analysis) and the tidy ``results.csv``; written by the runner, read by the report."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path

from shiftlab.io import NotARegularFile, open_regular, write_json_atomic, write_text_atomic
from shiftlab.study.analysis import Analysis
from shiftlab.study.config import StudyConfig
from shiftlab.study.records import SCHEMA_VERSION, RecordError, RunRecord

__all__ = ["MAX_RESULTS_BYTES", "MAX_RESULTS_CONTAINERS", "MAX_RESULTS_ITEMS", "RESULTS_FILES", "RESULTS_MEMORY_BOUND",
           "StudyMeta", "StudyResults", "load_results", "results_path", "write_results"]


@dataclass
class StudyMeta:
    """Provenance: dataset, canvas, where and how long it ran."""

    dataset: str
    n_train: int
    n_test: int
    n_eval: int  # images every model is measured on
    object_size: list[int]  # the images' H, W
    object_extent: list[int]  # the largest content box of an image (e.g. 20x20 for MNIST digits)
    canvas_size: list[int]
    max_shift: int
    classes: list[str]
    device: str
    workers: int  # worker processes, over all ranks
    threads_per_worker: int
    hardware: str
    torch_version: str
    shiftlab_version: str
    started: str  # ISO 8601, when the study was first started
    seconds: float  # wall time of the study over all its sessions (jobs and analysis)
    sessions: int = 1  # how many times it was started (1 + the resumes that ran)
    ranks: int = 1  # processes of the last session's torch.distributed process group (torchrun)


@dataclass
class StudyResults:
    """Top level of ``results.json``. ``config`` is :meth:`StudyConfig.to_dict`."""

    schema_version: int
    config: dict
    meta: StudyMeta
    runs: list[RunRecord]
    analysis: Analysis

    @property
    def main_runs(self) -> list[RunRecord]:
        """The runs at the study's main width (all but the capacity sweep's)."""
        width = self.config.get("width")
        return [r for r in self.runs if width is None or r.width == width]

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "config": self.config, "meta": dataclasses.asdict(self.meta),
                "runs": [r.to_dict() for r in self.runs], "analysis": self.analysis.to_dict()}

    def measurements(self) -> dict:
        """:meth:`to_dict` without ``meta`` and with every wall time set to 0: what must be
        identical between two runs of one study (any workers, ranks, interruptions;
        ``docs/reliability.md``, "Determinism")."""
        d = self.to_dict()
        del d["meta"]
        for run in d["runs"]:
            run["seconds"] = run["training"]["seconds"] = 0
            for row in run["training"]["history"] + run["training"]["head_history"]:
                row["seconds"] = 0
        return d

    @classmethod
    def from_dict(cls, d: object, *, source: str = "results") -> StudyResults:
        """Read results back; :class:`RecordError` (a ``ValueError``) names ``source`` when malformed."""
        if not isinstance(d, dict) or d.get("schema_version") != SCHEMA_VERSION:
            found = d.get("schema_version") if isinstance(d, dict) else type(d).__name__
            raise RecordError(f"{source} has schema version {found!r}, this shiftlab reads {SCHEMA_VERSION}; "
                              "rerun the study with this version")
        try:
            StudyConfig.from_dict(d["config"])  # every reader may trust the config's types and values
        except ValueError as err:
            raise RecordError(f"{source} has an invalid config: {err}") from err
        except (KeyError, TypeError) as err:
            raise RecordError(f"{source} is not a valid results file ({type(err).__name__}: {err})") from err
        try:
            results = cls(SCHEMA_VERSION, d["config"], StudyMeta(**d["meta"]),
                          [RunRecord.from_dict(r, source=f"{source} run {i}") for i, r in enumerate(d["runs"])],
                          Analysis.from_dict(d["analysis"]))
            results._check_classes()
            return results
        except (KeyError, TypeError) as err:
            raise RecordError(f"{source} is not a valid results file ({type(err).__name__}: {err})") from err

    def _check_classes(self) -> None:
        """``meta.classes`` names at least 2 classes, every class a run's explorer shows among
        them (``TypeError``; issue 21, case 17)."""
        classes = self.meta.classes
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise TypeError(f"meta.classes must list at least 2 class names, got {str(classes)[:80]}")
        for r in self.runs:
            labels = r.explorer.labels if r.explorer is not None else []
            if labels and max(labels) >= len(classes):
                raise TypeError(f"run {r.key}: its explorer shows class {max(labels)} but meta.classes lists "
                                f"{len(classes)} classes")


#: Results files a run directory may hold, in the order they are looked for: ``shiftlab study``
#: writes the first; a published run (``docs/results/``) may ship it compressed with ``xz``.
RESULTS_FILES = ("results.json", "results.json.xz")
#: The most JSON a results file may hold, compressed or not (bytes). A full study (565 runs, the
#: explorer's data for 31 of them) is 9.2 MB; this allows about seven times that.
MAX_RESULTS_BYTES = 64 << 20
#: The most containers (``[`` and ``{``) and items (``,`` and ``:``) a results file may hold. A
#: full study holds 115,155 containers and 854,507 items (one per 80 and per 11 bytes); these
#: allow about 4.5 times that. Parsing JSON takes memory per value, not per byte (``[[],[],...]``
#: takes 25 bytes of memory per byte of JSON), so bounding the counts bounds the parse.
MAX_RESULTS_CONTAINERS = 1 << 19
#: The most items (``,`` and ``:``) a results file may hold; see ``MAX_RESULTS_CONTAINERS``.
MAX_RESULTS_ITEMS = 1 << 22
#: What reading a results file may add to the process's peak memory: the limits above keep the
#: worst file within them under this (measured, ``tests/study/test_study_results.py``).
RESULTS_MEMORY_BOUND = 10 * MAX_RESULTS_BYTES
_CHUNK = 1 << 20


def results_path(run_dir: str | Path) -> Path:
    """The results file of ``run_dir``: ``results.json``, else ``results.json.xz`` when only that
    exists (the first name when neither does, for the error message)."""
    run_dir = Path(run_dir)
    return next((run_dir / name for name in RESULTS_FILES if (run_dir / name).is_file()), run_dir / RESULTS_FILES[0])


def _read_bounded(path: Path) -> bytearray:
    """The JSON bytes of the results file ``path`` (decompressed for ``.xz``), refusing more than
    :data:`MAX_RESULTS_BYTES` as soon as that many have been read or decompressed; only a regular
    file is read (:func:`shiftlab.io.open_regular`)."""
    limit = MAX_RESULTS_BYTES
    too_big = f"{path} holds more than {limit:,} bytes of JSON (the limit of a results file): not a results file"
    with open_regular(path) as f:
        if path.suffix != ".xz":
            if os.fstat(f.fileno()).st_size > limit:
                raise RecordError(too_big)
            data = bytearray()
            while chunk := f.read(_CHUNK):  # bounded while reading: the file may grow meanwhile
                data += chunk
                if len(data) > limit:
                    raise RecordError(too_big)
            return data
        # the xz decoder's memory: its dictionary (64 MiB for xz -9) and the bytes it holds back
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=2 * limit + (16 << 20))
        data = bytearray()
        while not decompressor.eof:
            chunk = f.read(_CHUNK) if decompressor.needs_input else b""
            if decompressor.needs_input and not chunk:
                raise RecordError(f"{path} is damaged (the xz stream is truncated)")
            data += decompressor.decompress(chunk, max_length=min(_CHUNK, limit + 1 - len(data)))  # 1 MiB at a time
            if len(data) > limit:
                raise RecordError(f"{path} expands to more than {limit:,} bytes: not a results file")
        if decompressor.unused_data or f.read(1):
            raise RecordError(f"{path} is damaged (data after the end of the xz stream)")
        return data


def _parse(path: Path, data: bytearray) -> object:
    """``json.loads`` of ``data`` (which it empties) within :data:`RESULTS_MEMORY_BOUND`: the
    containers and items are counted first (an upper bound: those inside strings count too) and a
    file with more than a results file can hold is refused before parsing."""
    if not data.isascii():
        raise RecordError(f"{path} is not a results file: it holds bytes that are not ASCII (shiftlab writes "
                          "results as ASCII JSON)")
    containers = data.count(b"[") + data.count(b"{")
    items = data.count(b",") + data.count(b":")
    if containers > MAX_RESULTS_CONTAINERS or items > MAX_RESULTS_ITEMS:
        raise RecordError(f"{path} holds {containers:,} JSON arrays and objects and {items:,} items, more than a results "
                          f"file may ({MAX_RESULTS_CONTAINERS:,} and {MAX_RESULTS_ITEMS:,}): not a results file")
    text = data.decode("ascii")
    del data[:]  # the bytes are not needed while the text is parsed
    try:
        return json.loads(text)
    except RecursionError:
        raise RecordError(f"{path} is not a results file: its JSON is nested too deeply") from None


def load_results(path: str | Path) -> StudyResults:
    """Read a results file: ``results.json``, ``results.json.xz`` (the same JSON compressed with
    ``xz``, as published runs ship it), or the run directory holding either (:func:`results_path`).

    Memory is bounded before parsing: at most :data:`MAX_RESULTS_BYTES` of JSON are read or
    decompressed (streaming, the limit enforced while reading), and at most
    :data:`MAX_RESULTS_CONTAINERS` and :data:`MAX_RESULTS_ITEMS` are parsed, so that reading any
    file adds at most :data:`RESULTS_MEMORY_BOUND` to the peak memory. Only a regular file is read
    (a FIFO or a device is refused). :class:`RecordError` for a file that is not a results file."""
    path = Path(path)
    if path.is_dir():
        path = results_path(path)
    return StudyResults.from_dict(read_results_json(path), source=str(path))


def read_results_json(path: Path) -> object:
    """The parsed JSON of the results file ``path``, bounded as :func:`load_results` says (for any
    study's results: the classification study's and the segmentation study's)."""
    try:
        return _parse(path, _read_bounded(path))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path} not found: run `shiftlab study --out {path.parent}` first") from err
    except NotARegularFile as err:
        raise RecordError(str(err)) from None
    except (json.JSONDecodeError, lzma.LZMAError) as err:
        raise RecordError(f"{path} is damaged ({err}); `shiftlab study --out {path.parent} --resume` rewrites it") from err


def _csv(runs: list[RunRecord]) -> str:
    """Tidy table: one row per run and canvas shift (pandas.read_csv reads it)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", "downsampling", "head", "padding", "condition", "seed", "width", "dy", "dx", "accuracy",
                     "agreement_with_unshifted", "test_accuracy", "consistency", "converged", "params"])
    for r in runs:
        if r.profile is None:
            continue
        for (dy, dx), acc, agree in zip(r.profile.shifts, r.profile.accuracy, r.profile.agreement, strict=True):
            writer.writerow([r.model, r.downsampling, r.head, r.padding, r.condition, r.seed, r.width, dy, dx, f"{acc:.6g}",
                             f"{agree:.6g}", f"{r.summary['test_accuracy']:.6g}", f"{r.summary['consistency']:.6g}",
                             r.training.converged, r.params])
    return buf.getvalue()


def write_results(out: Path, results: StudyResults) -> StudyResults:
    """Write ``results.json`` (compact JSON: a full run stays small enough to publish) and
    ``results.csv`` atomically; return ``results``."""
    write_json_atomic(out / "results.json", results.to_dict(), indent=None, root=out)
    write_text_atomic(out / "results.csv", _csv(results.runs), root=out)
    return results
