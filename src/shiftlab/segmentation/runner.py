"""Run the segmentation study: every U-Net x condition x seed a job (:mod:`.job`), in worker
processes with one torch thread each; then the analysis (:mod:`.analysis`), ``results.json`` and
``report.html``.

Run directory layout (as the classification study's, ``docs/study.md``)::

    RUN_DIR/config.json        the SegStudyConfig (``--resume`` checks it)
    RUN_DIR/checkpoints/KEY/   training checkpoints (one per run, each epoch)
    RUN_DIR/runs/KEY.json      one SegRunRecord per finished run (a finished run is never redone)
    RUN_DIR/runs/KEY.npz       its per-image arrays (the bootstrap's input)
    RUN_DIR/results.json       config, runs and analysis; report.html the report
    RUN_DIR/.lock              held while the study runs

Results do not depend on the number of workers: every job is seeded and runs single-threaded.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch

from shiftlab.io import open_regular, write_json_atomic, write_text_atomic
from shiftlab.study.lock import run_dir_lock
from shiftlab.study.records import RecordError
from shiftlab.study.results import read_results_json, results_path
from shiftlab.study.runner import terminate_pool

from .analysis import SegResults, analyse_seg
from .config import SegStudyConfig
from .job import PER_IMAGE, SegData, SegJob, SegRunRecord, load_seg_data, record_paths, run_seg_job, seg_jobs
from .report import render_seg_report

__all__ = ["load_seg_run", "rebuild_seg_report", "run_seg_study", "seg_results_in"]

_WORKER: dict = {}


def _check_config(config: SegStudyConfig, out: Path, resume: bool) -> None:
    path = out / "config.json"
    if not path.exists():
        return
    if not resume:
        raise FileExistsError(f"{out} already holds a study; pass --resume to continue it or choose another --out")
    with open_regular(path) as f:
        saved = SegStudyConfig.from_dict(json.load(f))
    if saved != config:
        changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict().get(k) != v)
        raise ValueError(f"{out} holds a segmentation study with another config (fields {changed}); resume it with the "
                         "same options or choose another --out")


def _load_run(out: Path, job: SegJob) -> tuple[SegRunRecord, dict[str, np.ndarray]] | None:
    """The finished run of ``job`` (None when it has not finished); RecordError when damaged."""
    json_path, npz_path = record_paths(out, job.key)
    if not json_path.exists() or not npz_path.exists():
        return None
    try:
        with open_regular(json_path) as f:
            record = SegRunRecord.from_dict(json.load(f), source=str(json_path))
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name]) for name in PER_IMAGE}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise RecordError(f"{json_path} or {npz_path} is damaged ({err}); delete both to redo that run") from err
    return record, arrays


def _init_worker() -> None:
    torch.set_num_threads(1)


def _worker(config: SegStudyConfig, job: SegJob, out: str, resume: bool, device: str) -> str:
    key = json.dumps(config.to_dict(), sort_keys=True)
    if _WORKER.get("key") != key:
        _WORKER["data"], _WORKER["key"] = load_seg_data(config), key
    run_seg_job(config, _WORKER["data"], job, Path(out), resume=resume, device=device)
    return job.key


def _run_jobs(config: SegStudyConfig, data: SegData, jobs: list[SegJob], out: Path, resume: bool, workers: int,
              device: str, on_job: Callable[[str, int, int], None] | None, done: int, total: int) -> None:
    if workers <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for job in jobs:
                run_seg_job(config, data, job, out, resume=resume, device=device)
                done += 1
                if on_job:
                    on_job(job.key, done, total)
        finally:
            torch.set_num_threads(threads)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        pending = {pool.submit(_worker, config, job, str(out), resume, device) for job in jobs}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                key = future.result()  # re-raises a job's error
                done += 1
                if on_job:
                    on_job(key, done, total)
        pool.shutdown(wait=True)
    except BaseException:
        terminate_pool(pool)
        raise


def load_seg_run(out: Path, config: SegStudyConfig, loaded: dict[str, tuple[SegRunRecord, dict[str, np.ndarray]]]
                 | None = None) -> tuple[list[SegRunRecord], list[dict[str, np.ndarray]]]:
    """Every finished run of ``config`` in ``out``, in job order; ``ValueError`` naming the missing ones.
    ``loaded`` holds runs already read, by job key (they are not read again)."""
    loaded = loaded or {}
    runs = [(job, loaded[job.key] if job.key in loaded else _load_run(out, job)) for job in seg_jobs(config)]
    missing = [job.key for job, run in runs if run is None]
    if missing:
        raise ValueError(f"{out} lacks {len(missing)} run(s) ({', '.join(missing[:3])}, ...); "
                         "run the study with --resume to finish them")
    return [run[0] for _, run in runs if run], [run[1] for _, run in runs if run]


def run_seg_study(config: SegStudyConfig, out: str | Path, *, resume: bool = False, workers: int = 1,
                  device: str = "cpu", on_job: Callable[[str, int, int], None] | None = None) -> SegResults:
    """Run (or finish, with ``resume``) the segmentation study of ``config`` in ``out``; write
    ``results.json`` and ``report.html`` there and return the results.

    Args:
        config: what to train and measure.
        out: the run directory (created; one study per directory).
        resume: continue a study in ``out`` (its config must be ``config``).
        workers: worker processes (one torch thread each); 1 runs in this process.
        device: where to train and measure.
        on_job: called with ``(key, done, total)`` after each finished run.
    """
    out = Path(out)
    _check_config(config, out, resume)
    data = load_seg_data(config)  # a missing or unknown dataset fails before anything is written
    with run_dir_lock(out):
        write_json_atomic(out / "config.json", config.to_dict(), root=out)
        (out / "runs").mkdir(exist_ok=True)
        jobs = seg_jobs(config)
        finished = {job.key: run for job in jobs if (run := _load_run(out, job)) is not None}  # damage found now
        todo = [job for job in jobs if job.key not in finished]
        if on_job and len(todo) < len(jobs):
            on_job("(finished before)", len(jobs) - len(todo), len(jobs))
        _run_jobs(config, data, todo, out, resume, workers, device, on_job, len(jobs) - len(todo), len(jobs))
        records, arrays = load_seg_run(out, config, finished)
        results = analyse_seg(config, records, arrays, classes=data.test.classes)
        write_json_atomic(out / "results.json", results.to_dict(), root=out)
        write_text_atomic(out / "report.html", render_seg_report(results), root=out)
    return results


def seg_results_in(out: str | Path) -> SegResults | None:
    """The segmentation study's results in ``out`` (a run directory or its results file), None when
    there are none or they are another study's; read bounded (:func:`shiftlab.study.results.read_results_json`)."""
    path = Path(out)
    path = results_path(path) if path.is_dir() else path
    if not path.is_file():
        return None  # nothing to read: the caller says what is missing
    payload = read_results_json(path)
    if not (isinstance(payload, dict) and payload.get("task") == "segmentation"):
        return None
    return SegResults.from_dict(payload, source=str(path))


def rebuild_seg_report(out: str | Path) -> Path:
    """Write ``report.html`` of the segmentation study in ``out`` again from its ``results.json``; its path."""
    out = Path(out)
    results = seg_results_in(out)
    if results is None:
        raise ValueError(f"{results_path(out)} holds another study's results, not a segmentation study's")
    write_text_atomic(out / "report.html", render_seg_report(results), root=out)
    return out / "report.html"
