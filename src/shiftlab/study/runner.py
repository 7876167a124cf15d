"""Run the study: every model x condition x seed is a job (:mod:`.job`), run in parallel worker
processes with one torch thread each; then the analysis (:mod:`.analysis`) and ``results.json``.

Run directory layout::

    RUN_DIR/config.json        the StudyConfig
    RUN_DIR/checkpoints/KEY/   training checkpoints (one per run, each epoch)
    RUN_DIR/runs/KEY.json      one RunRecord per finished run (a finished run is never redone)
    RUN_DIR/runs/KEY.npz       its per-image statistics (the bootstrap's input)
    RUN_DIR/results.json       StudyResults: config, meta, runs, analysis; results.csv: one row per run and shift
    RUN_DIR/report.html        the report (shiftlab report RUN_DIR rebuilds it)
    RUN_DIR/timing.json        first start, wall time and number of sessions, over all resumes; the last session's ranks
    RUN_DIR/.lock              held while a study runs (shiftlab.study.lock)

Results do not depend on the number of workers: every job is seeded and runs single-threaded
(``torch.set_num_threads(1)``; a float sum's order depends on the thread count), whichever
process runs it.

Under an initialised ``torch.distributed`` process group (``torchrun -m shiftlab study``) the
ranks split the jobs (:mod:`.sharding`) and run their shares in worker processes outside the
group; rank 0 holds the run directory, receives the files of the runs it lacks (:mod:`.transfer`:
no shared filesystem is needed) and alone analyses and writes the results, which every rank
returns (``docs/study.md``, "Running under torchrun").
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import queue as queue_module
import shutil
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

import shiftlab
from shiftlab.data.canvas import content_extent
from shiftlab.io import write_json_atomic
from shiftlab.measure import distributed
from shiftlab.measure.runner import resolve_device
from shiftlab.study.analysis import analyse
from shiftlab.study.config import StudyConfig, param_matched_width
from shiftlab.study.data import StudyData, prepare_data
from shiftlab.study.job import Job, Progress, record_paths, run_job
from shiftlab.study.lock import run_dir_lock
from shiftlab.study.records import SCHEMA_VERSION, RecordError, RunRecord, load_per_image
from shiftlab.study.results import StudyMeta, StudyResults, write_results
from shiftlab.study.sharding import assign, job_cost
from shiftlab.study.transfer import receive_files, send_files

__all__ = ["RankTiming", "check_run_dir", "default_workers", "jobs_of", "run_study"]


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def jobs_of(config: StudyConfig) -> list[Job]:
    """Every job of ``config``, condition-major, then the capacity sweep's (centred, width-major),
    then the parameter-matched runs (centred, at :func:`~shiftlab.study.config.param_matched_width`;
    none for a model whose matched width is the study's own or one the sweep already trains it at)."""
    jobs = ([Job(m, c, s) for c in config.conditions for m in config.models for s in range(config.seeds)]
            + [Job(m, "centred", s, width=w) for w in config.capacity_widths if w != config.width
               for m in config.capacity_models for s in range(config.seeds)])
    keys = {job.key for job in jobs}
    matched = [Job(m, "centred", s, width=param_matched_width(m, config.width))
               for m in config.param_matched for s in range(config.seeds)]
    return jobs + [job for job in matched if job.width != config.width and job.key not in keys]


def check_run_dir(config: StudyConfig, out: Path, resume: bool) -> int | None:
    """Raise when ``out`` holds another study (without ``resume``) or one with another config.

    One change is allowed on resume of a study that stops at the target (``stop_at_target``): a
    larger ``max_epochs`` (the runs that stopped at the saved cap below the target train on:
    :meth:`~shiftlab.study.records.TrainingRecord.stopped_short`); then the saved cap is returned,
    else None. Under a fixed budget the budget is part of every run's schedule and may not change."""
    saved = out / "config.json"
    if not saved.exists():
        return None
    if not resume:
        raise FileExistsError(f"{out} already holds a study; pass --resume to continue it, or choose another --out")
    try:
        old = StudyConfig.from_dict(json.loads(saved.read_text())).to_dict()  # fields added since: their defaults
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as err:
        raise ValueError(f"{saved} is damaged ({err}); delete it (the runs are kept) and resume again") from err
    mine = config.to_dict()
    if old == mine:
        return None
    diff = sorted(k for k in set(old) | set(mine) if old.get(k) != mine.get(k))
    if diff == ["max_epochs"] and mine["max_epochs"] > old["max_epochs"] and config.stop_at_target:
        return int(old["max_epochs"])
    if config.stop_at_target:
        hint = f" (only a larger --max-epochs than {old['max_epochs']} may change)"
    elif "max_epochs" in diff:
        hint = (f" (--max-epochs {old['max_epochs']}: under a fixed budget the epochs are part of every model's "
                "learning-rate schedule)")
    else:
        hint = ""
    raise ValueError(f"--resume with a different configuration than {saved} (differs in: {', '.join(diff)}); "
                     f"use the same options{hint} "
                     "or another --out")


def _finished(out: Path, job: Job, max_epochs: int) -> tuple[RunRecord, dict[str, np.ndarray]] | None:
    """The saved record and per-image arrays of ``job``, or None when it has not finished, its
    files are damaged (then they are removed, and the job is redone), or its training stopped
    below the target before ``max_epochs`` (then it trains on from its checkpoint and its files
    are replaced when it finishes)."""
    json_path, npz_path = record_paths(out, job.key)
    if not json_path.exists():
        return None
    try:
        record = RunRecord.from_dict(json.loads(json_path.read_text()), source=str(json_path))
        per_image = load_per_image(npz_path)
    except (RecordError, UnicodeDecodeError, json.JSONDecodeError, FileNotFoundError):
        json_path.unlink(missing_ok=True)
        npz_path.unlink(missing_ok=True)
        return None
    return None if record.training.stopped_short(max_epochs) else (record, per_image)


def _absent(out: Path) -> set[Path]:
    """What a new study would create in ``out`` that is not there yet (``out`` itself, config.json,
    runs/, checkpoints/, the lock and timing files); empty when ``out`` already holds a study's config.json."""
    if (out / "config.json").exists():
        return set()
    return {p for p in (out, out / "config.json", out / "runs", out / "checkpoints", out / ".lock", out / TIMING_NAME)
            if not p.exists()}


def _remove_stale_temporaries(out: Path) -> None:
    """Remove the temporary files of atomic writes (``.NAME.XXXX.tmp``, :func:`shiftlab.io.write_atomic`)
    that a killed study left behind: with the run directory locked, no live writer owns them,
    and none was ever read as a finished file."""
    for path in out.rglob(".*.tmp"):
        path.unlink(missing_ok=True)


def _undo_start(out: Path, created: set[Path], jobs: list[Job]) -> None:
    """After an error before any training epoch was saved, remove what this start created, so that
    the corrected command runs without --resume. Nothing is removed once a run has finished or an
    epoch has been checkpointed (then --resume continues it), or when the study was resumed;
    nothing that existed before is removed."""
    if not created or any(record_paths(out, job.key)[0].exists() for job in jobs):
        return
    if any((out / "checkpoints").rglob("checkpoint.pt")):
        return
    if out in created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for path in created:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# --- worker processes -------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(events: multiprocessing.Queue | None) -> None:
    torch.set_num_threads(1)
    _WORKER["events"] = events


def _worker_data(config: StudyConfig) -> StudyData:
    key = json.dumps(config.to_dict(), sort_keys=True)
    if _WORKER.get("data_key") != key:
        _WORKER["data"], _WORKER["data_key"] = prepare_data(config), key
    return _WORKER["data"]


def _worker_job(config: StudyConfig, job: Job, out: str, resume: bool, device: str) -> str:
    events = _WORKER.get("events")
    progress = None if events is None else (lambda *event: events.put(event))
    run_job(config, _worker_data(config), job, Path(out), resume=resume, progress=progress, device=device)
    return job.key


@dataclass
class _Callbacks:
    on_job: Callable[[str, int, int], None] | None
    progress: Progress | None


def _run_in_process(config: StudyConfig, data: StudyData, jobs: list[Job], out: Path, resume: bool,
                    calls: _Callbacks, done0: int, total: int, device: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i, job in enumerate(jobs):
            run_job(config, data, job, out, resume=resume, progress=calls.progress, device=device)
            if calls.on_job:
                calls.on_job(job.key, done0 + i + 1, total)
    finally:
        torch.set_num_threads(threads)


def _run_in_pool(config: StudyConfig, jobs: list[Job], out: Path, resume: bool, workers: int, calls: _Callbacks,
                 done0: int, total: int, device: str) -> None:
    context = multiprocessing.get_context("spawn")
    events = context.Queue() if calls.progress else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(events,))
    try:
        pending: set[Future] = {pool.submit(_worker_job, config, job, str(out), resume, device) for job in jobs}
        done = done0
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(events, calls.progress)
            for future in finished:
                key = future.result()  # re-raises a job's error here
                done += 1
                if calls.on_job:
                    calls.on_job(key, done, total)
        pool.shutdown(wait=True)
    except BaseException:
        terminate_pool(pool)
        raise


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what ``pool`` has not started and terminate its workers (after an error or an
    interruption: a job in progress is lost, its checkpoints are kept)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def _drain(events: multiprocessing.Queue | None, progress: Progress | None) -> None:
    if events is None or progress is None:
        return
    while True:
        try:
            progress(*events.get_nowait())
        except queue_module.Empty:
            return


TIMING_NAME = "timing.json"


def _timing(out: Path) -> dict:
    """``{"started", "seconds", "sessions"}`` of the earlier sessions of the study in ``out``
    (empty for a new study or an unreadable file, which only loses the earlier wall time)."""
    try:
        timing = json.loads((out / TIMING_NAME).read_text())
        return timing if isinstance(timing, dict) and {"started", "seconds", "sessions"} <= set(timing) else {}
    except (OSError, ValueError):
        return {}


class _SessionClock:
    """This session's share of ``out/timing.json``: the session is counted when it starts, and its
    wall time is added after every finished job and at the end, so a session killed without
    warning (SIGKILL) loses at most the time since its last finished job. ``ranks`` holds each
    rank's part of the last session that finished its jobs (:class:`RankTiming`)."""

    def __init__(self, out: Path, started: str, t0: float) -> None:
        before = _timing(out)
        self.out, self.t0 = out, t0
        self.base = {"started": before.get("started", started), "seconds": before.get("seconds", 0.0),
                     "sessions": before.get("sessions", 0) + 1}
        if "ranks" in before:
            self.base["ranks"] = before["ranks"]
        self.tick()

    def tick(self) -> dict:
        timing = dict(self.base, seconds=self.base["seconds"] + time.perf_counter() - self.t0)
        write_json_atomic(self.out / TIMING_NAME, timing, root=self.out)
        return timing

    def ranks(self, parts: list[RankTiming]) -> dict:
        """Record this session's ranks and tick."""
        self.base["ranks"] = [asdict(part) for part in parts]
        return self.tick()


def _ticking(on_job: Callable[[str, int, int], None] | None,
             clock: _SessionClock | None) -> Callable[[str, int, int], None] | None:
    """``on_job`` that first adds the session's wall time so far to ``timing.json`` (``on_job``
    itself without a clock: a rank other than 0)."""
    if clock is None:
        return on_job

    def call(key: str, done: int, total: int) -> None:
        clock.tick()
        if on_job is not None:
            on_job(key, done, total)
    return call


def _meta(config: StudyConfig, data: StudyData, timing: dict, workers: int, device: str, ranks: int) -> StudyMeta:
    h, w = data.canvas.canvas_size
    return StudyMeta(
        dataset=config.data, n_train=int(data.train_x.shape[0]), n_test=int(data.test_x.shape[0]),
        n_eval=int(data.eval_x.shape[0]), object_size=list(data.canvas.object_size),
        object_extent=list(content_extent(data.train_x)), canvas_size=[h, w], max_shift=data.max_shift,
        classes=data.classes, device=device, workers=workers, threads_per_worker=1,
        hardware=(f"{platform.processor() or platform.machine()}, {default_workers()} cores, "
                  f"{platform.system()} {platform.release()}"),
        torch_version=torch.__version__, shiftlab_version=shiftlab.__version__, started=timing["started"],
        seconds=timing["seconds"], sessions=timing["sessions"], ranks=ranks,
    )


@dataclass(frozen=True)
class _Arrival:
    """What a rank brings to a session: the runs finished in its view of the run directory (with
    ``resume``), and its host (ranks on one host share its cores)."""

    finished: frozenset[str]
    host: str


@dataclass(frozen=True)
class RankTiming:
    """One rank's part of a session (``timing.json``, ``ranks``): the jobs it ran, its worker
    processes, the wall time of its jobs."""

    rank: int
    host: str
    jobs: int
    workers: int
    seconds: float


def _arrive(config: StudyConfig, out: Path, resume: bool) -> StudyData:
    """A rank's start: remove stale temporary files, check ``out`` against ``config``, load the data."""
    _remove_stale_temporaries(out)
    check_run_dir(config, out, resume)
    return prepare_data(config)  # fails on a missing dataset before anything is written


def _run_files(out: Path, key: str) -> list[Path]:
    """The files of finished run ``key``: its checkpoints, then ``runs/KEY.npz``, then
    ``runs/KEY.json`` (last: its presence marks the run finished)."""
    checkpoints = sorted(p for p in (out / "checkpoints" / key).rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    json_path, npz_path = record_paths(out, key)
    return [*checkpoints, npz_path, json_path]


def _collect(out: Path, missing: list[str], arrivals: list[_Arrival], shares: list[list[Job]]) -> None:
    """Rank 0 receives the files of the runs ``missing`` from its run directory, each from the
    lowest rank that has it (finished before this session, or ran it now); every rank calls it."""
    here = distributed.rank()
    has = [set(arrival.finished) | {job.key for job in share} for arrival, share in zip(arrivals, shares, strict=True)]
    for key in missing:
        owner = next((r for r, keys in enumerate(has) if key in keys), 0)
        if owner == 0:  # nobody else has it: the analysis reports the missing record
            continue
        if here == owner:
            send_files(out, _run_files(out, key), dst=0)
        elif here == 0:
            receive_files(out, src=owner)


def _results(config: StudyConfig, out: Path, jobs: list[Job], data: StudyData, timing: dict, workers: int,
             device: str, ranks: int) -> StudyResults:
    """Read every run back, analyse, write ``results.json`` and ``results.csv``."""
    records, per_image = [], []
    for job in jobs:
        finished = _finished(out, job, config.max_epochs)
        if finished is None:  # pragma: no cover (a job that returned has written its files)
            raise RecordError(f"run {job.key} finished but its record is missing")
        records.append(finished[0])
        per_image.append(finished[1])
    analysis = analyse(config, records, per_image)
    meta = _meta(config, data, timing, workers, device, ranks)
    return write_results(out, StudyResults(SCHEMA_VERSION, config.to_dict(), meta, records, analysis))


def run_study(
    config: StudyConfig,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int | None = None,
    on_start: Callable[[list[Job], int], None] | None = None,
    on_job: Callable[[str, int, int], None] | None = None,
    progress: Progress | None = None,
    device: str | torch.device = "auto",
) -> StudyResults:
    """Train and measure every job of ``config`` into ``out``, analyse, write ``results.json``.

    Under an initialised ``torch.distributed`` process group every rank calls this with the same
    arguments (``device`` and ``out`` may differ: each rank's GPU, each node's view of the run
    directory); the ranks split the jobs and all return the same results
    (``docs/study.md``, "Running under torchrun").

    Args:
        config: what to run.
        out: the run directory.
        resume: read finished runs back (damaged ones are redone) and continue unfinished
            trainings from their last epoch; the config must equal the saved one. Without it,
            ``out`` must not hold an earlier study.
        workers: worker processes (of each rank under a process group; default: the cores of
            this host over the ranks on it; 1 on a GPU); 1 runs in this process (a single process
            only: ranks always run their jobs in worker processes, outside the process group).
            Every job runs with one torch thread, so results are identical for any count.
            Workers are started with ``spawn``: a script calling this with ``workers > 1``
            needs the ``if __name__ == "__main__":`` guard.
        on_start: called once as ``on_start(todo, finished)`` before the first job, with the
            jobs this process runs and the jobs finished before that count towards its
            ``on_job`` total (those of earlier sessions in a single process, 0 for a rank).
        on_job: called as ``on_job(key, finished, total)`` after each job this process runs.
        progress: called as ``progress(key, stage, done, total)`` as jobs train and measure.
        device: where every job trains and is measured (``"auto"``: CUDA when available, else
            the CPU); recorded in ``meta.device``. GPU runs agree with CPU runs to float rounding,
            not bitwise (``docs/definitions.md``, "Devices and determinism").

    Returns:
        the :class:`~shiftlab.study.results.StudyResults` also written to ``out/results.json``.

    Raises:
        PeerFailure: (:mod:`shiftlab.measure.distributed`) another rank failed to start or to
            analyse (that rank raises its own error).
    """
    out = Path(out)
    dev = str(resolve_device(device))
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    rank, size = distributed.rank(), distributed.world_size()
    created = _absent(out) if rank == 0 else set()  # a start that fails before any run finishes removes what it wrote
    jobs = jobs_of(config)
    running = False
    with ExitStack() as held:
        with distributed.all_or_none():  # the other ranks touch nothing before rank 0 holds the directory
            distributed.first_rank(lambda: held.enter_context(run_dir_lock(out)))
        try:
            with distributed.all_or_none():
                data = _arrive(config, out, resume)
                started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
                here = _Arrival(frozenset(job.key for job in jobs if resume and _finished(out, job, config.max_epochs)),
                                socket.gethostname())
                arrivals = distributed.all_gather(here)
            finished = frozenset().union(*(arrival.finished for arrival in arrivals))
            todo = [job for job in jobs if job.key not in finished]
            canvas_h, canvas_w = data.canvas.canvas_size
            canvas, channels, classes = (int(canvas_h), int(canvas_w)), data.train_x.shape[1], len(data.classes)
            shares = [[todo[i] for i in share]  # long jobs first, so the ranks and their workers finish together
                      for share in assign([job_cost(config, job, canvas, channels, classes) for job in todo], size)]
            mine = shares[rank]
            on_host = sum(arrival.host == here.host for arrival in arrivals)
            mine_workers = workers or (1 if dev != "cpu" else max(1, default_workers() // on_host))
            write_json_atomic(out / "config.json", config.to_dict(), root=out)
            clock = _SessionClock(out, started, t0) if rank == 0 else None
            done0 = len(jobs) - len(todo) if size == 1 else 0
            calls = _Callbacks(_ticking(on_job, clock), progress)
            if on_start is not None:
                on_start(mine, done0)
            running, t_jobs = True, time.perf_counter()
            try:  # a rank that fails here stops at once (torchrun then stops the others)
                if size == 1 and (mine_workers == 1 or len(mine) <= 1):
                    _run_in_process(config, data, mine, out, resume, calls, done0, done0 + len(mine), dev)
                elif mine:
                    _run_in_pool(config, mine, out, resume, min(mine_workers, len(mine)), calls, done0,
                                 done0 + len(mine), dev)
            finally:  # an interrupted session still counts its wall time
                if clock is not None:
                    clock.tick()
            with distributed.all_or_none():
                parts = distributed.all_gather(RankTiming(rank, here.host, len(mine), mine_workers,
                                                          time.perf_counter() - t_jobs))
                missing = distributed.first_rank(
                    lambda: [job.key for job in jobs if _finished(out, job, config.max_epochs) is None])
                _collect(out, missing, arrivals, shares)
                if clock is not None:
                    clock.ranks(parts)
        except Exception:
            if rank == 0 and (size == 1 or not running):
                _undo_start(out, created, jobs)
            raise
    def results_on_rank0() -> StudyResults:  # rank 0 holds the clock
        assert clock is not None
        return _results(config, out, jobs, data, clock.tick(), sum(p.workers for p in parts), dev, size)

    with distributed.all_or_none():
        return distributed.first_rank(results_on_rank0)
