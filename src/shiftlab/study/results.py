"""A study's results as typed objects: ``results.json`` (config, provenance, every run, the
analysis) and the tidy ``results.csv``; written by the runner, read by the report."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path

from shiftlab.io import write_json_atomic, write_text_atomic
from shiftlab.study.analysis import Analysis
from shiftlab.study.config import StudyConfig
from shiftlab.study.records import SCHEMA_VERSION, RecordError, RunRecord

__all__ = ["MAX_RESULTS_BYTES", "RESULTS_FILES", "StudyMeta", "StudyResults", "load_results", "results_path", "write_results"]


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
    def from_dict(cls, d: dict, *, source: str = "results") -> StudyResults:
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
            return cls(SCHEMA_VERSION, d["config"], StudyMeta(**d["meta"]),
                       [RunRecord.from_dict(r, source=f"{source} run {i}") for i, r in enumerate(d["runs"])],
                       Analysis.from_dict(d["analysis"]))
        except (KeyError, TypeError) as err:
            raise RecordError(f"{source} is not a valid results file ({type(err).__name__}: {err})") from err


#: Results files a run directory may hold, in the order they are looked for: ``shiftlab study``
#: writes the first; a published run (``docs/results/``) may ship it compressed with ``xz``.
RESULTS_FILES = ("results.json", "results.json.xz")
#: The most a compressed results file may expand to (a full study is about 10 MB).
MAX_RESULTS_BYTES = 1 << 30


def results_path(run_dir: str | Path) -> Path:
    """The results file of ``run_dir``: ``results.json``, else ``results.json.xz`` when only that
    exists (the first name when neither does, for the error message)."""
    run_dir = Path(run_dir)
    return next((run_dir / name for name in RESULTS_FILES if (run_dir / name).is_file()), run_dir / RESULTS_FILES[0])


def _read_xz(path: Path) -> bytes:
    """The decompressed bytes of ``path``, refusing more than :data:`MAX_RESULTS_BYTES`."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    data = decompressor.decompress(path.read_bytes(), max_length=MAX_RESULTS_BYTES + 1)
    if len(data) > MAX_RESULTS_BYTES:
        raise RecordError(f"{path} expands to more than {MAX_RESULTS_BYTES:,} bytes: not a results file")
    if not decompressor.eof:
        raise RecordError(f"{path} is damaged (the xz stream is truncated)")
    return data


def load_results(path: str | Path) -> StudyResults:
    """Read a results file: ``results.json``, ``results.json.xz`` (the same JSON compressed with
    ``xz``, as published runs ship it), or the run directory holding either (:func:`results_path`)."""
    path = Path(path)
    if path.is_dir():
        path = results_path(path)
    try:
        raw = _read_xz(path) if path.suffix == ".xz" else path.read_bytes()
        payload = json.loads(raw.decode("utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path} not found: run `shiftlab study --out {path.parent}` first") from err
    except (UnicodeDecodeError, json.JSONDecodeError, lzma.LZMAError) as err:
        raise RecordError(f"{path} is damaged ({err}); `shiftlab study --out {path.parent} --resume` rewrites it") from err
    return StudyResults.from_dict(payload, source=str(path))


def _csv(runs: list[RunRecord]) -> str:
    """Tidy table: one row per run and canvas shift (pandas.read_csv reads it)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", "downsampling", "head", "padding", "condition", "seed", "width", "dy", "dx", "accuracy",
                     "agreement_with_unshifted", "test_accuracy", "consistency", "converged", "params"])
    for r in runs:
        if r.profile is None:
            continue
        for (dy, dx), acc, agree in zip(r.profile.shifts, r.profile.accuracy, r.profile.agreement):
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
