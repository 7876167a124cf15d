"""``add_explorer(run_dir)``: the shift explorer's data for a study whose records lack it (run
before the explorer existed), computed from the run's checkpoints (``docs/explorer.md``).

Each model is rebuilt from ``RUN_DIR/checkpoints/KEY/`` (its final epoch: the weights the study
measured), put in the study's memory format and run single-threaded as the study ran it, and
:func:`shiftlab.study.measurements.explore` measures 16 of its evaluation images; the record
``runs/KEY.json`` and ``results.json`` get the result (nothing else in them changes).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shiftlab.io import write_json_atomic
from shiftlab.study.checkpoints import load_study_model
from shiftlab.study.conditions import condition
from shiftlab.study.config import StudyConfig
from shiftlab.study.data import prepare_data
from shiftlab.study.job import record_paths
from shiftlab.study.lock import run_dir_lock
from shiftlab.study.measurements import explore
from shiftlab.study.records import RunRecord
from shiftlab.study.results import StudyResults, load_results, write_results
from shiftlab.training.checkpoint import checkpoint_path

__all__ = ["EXPLORER_SCOPES", "ExplorerBackfill", "add_explorer", "runs_to_explore"]

#: ``"shown"``: the runs the report's explorer shows (the lowest seed of every model and condition
#: at the study's width); ``"all"``: every run of those conditions, every seed and width.
EXPLORER_SCOPES = ("shown", "all")


@dataclass
class ExplorerBackfill:
    """What :func:`add_explorer` did: ``computed`` and ``present`` (had it already) run keys,
    ``skipped`` key -> why, ``seconds`` of computing."""

    computed: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def runs_to_explore(results: StudyResults, scope: str = "shown") -> tuple[list[RunRecord], dict[str, str]]:
    """The runs ``scope`` (:data:`EXPLORER_SCOPES`) asks for, and the others' keys -> why not."""
    if scope not in EXPLORER_SCOPES:
        raise ValueError(f"scope must be one of {EXPLORER_SCOPES}, got {scope!r}")
    width = results.config.get("width")
    wanted: list[RunRecord] = []
    skipped: dict[str, str] = {}
    lowest: dict[tuple[str, str], int] = {}
    for r in results.runs:
        cond = condition(r.condition)
        if cond.probe or cond.transfer:
            skipped[r.key] = ("the position probe has no canvas measurement" if cond.probe else
                              "transfer runs are measured on the second half of the classes; the explorer shows "
                              "the conditions measured on every class")
        elif scope == "shown" and (r.width != width):
            skipped[r.key] = "capacity sweep (use scope 'all')"
        else:
            wanted.append(r)
            lowest[(r.model, r.condition)] = min(r.seed, lowest.get((r.model, r.condition), r.seed))
    if scope == "shown":
        for r in [r for r in wanted if r.seed != lowest[(r.model, r.condition)]]:
            skipped[r.key] = "not the lowest seed (use scope 'all')"
        wanted = [r for r in wanted if r.seed == lowest[(r.model, r.condition)]]
    return wanted, skipped


def add_explorer(run_dir: str | Path, *, scope: str = "shown",
                 on_run: Callable[[str, int, int], None] | None = None) -> ExplorerBackfill:
    """Compute the explorer's data of the runs of ``run_dir`` that lack it, from their checkpoints.

    Args:
        run_dir: a study's run directory (``results.json``, ``runs/``, ``checkpoints/``).
        scope: which runs (:data:`EXPLORER_SCOPES`).
        on_run: called as ``on_run(key, done, total)`` after each computed run.

    Holds the run directory's lock (a study running there makes this refuse at once). Needs the
    study's dataset (the evaluation images are loaded again; the loader's error says how to get it).

    Raises:
        FileNotFoundError: no ``results.json`` in ``run_dir``.
        shiftlab.study.lock.RunDirLocked: a study is running in ``run_dir``.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file():
        raise FileNotFoundError(f"{run_dir / 'results.json'} not found: run `shiftlab study --out {run_dir}` first")
    done = ExplorerBackfill()
    with run_dir_lock(run_dir):
        results = load_results(run_dir)
        wanted, done.skipped = runs_to_explore(results, scope)
        todo = []
        for r in wanted:
            if r.explorer is not None:
                done.present.append(r.key)
            elif not checkpoint_path(run_dir / "checkpoints" / r.key).is_file():
                done.skipped[r.key] = "no checkpoint"
            else:
                todo.append(r)
        if not todo:
            return done
        data = prepare_data(StudyConfig.from_dict(results.config))
        threads, start = torch.get_num_threads(), time.perf_counter()
        torch.set_num_threads(1)  # as the study ran every model: the same numbers
        try:
            for i, r in enumerate(todo):
                model = load_study_model(run_dir / "checkpoints" / r.key).model
                # Module.to takes memory_format (documented); torch's type stub omits it.
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                r.explorer = explore(model, data.eval_x, data.eval_y, radius=data.max_shift)
                json_path = record_paths(run_dir, r.key)[0]
                record = json.loads(json_path.read_text()) if json_path.is_file() else r.to_dict()
                record["explorer"] = dataclasses.asdict(r.explorer)
                write_json_atomic(json_path, record, root=run_dir)
                done.computed.append(r.key)
                if on_run is not None:
                    on_run(r.key, i + 1, len(todo))
        finally:
            torch.set_num_threads(threads)
            done.seconds = time.perf_counter() - start
            if done.computed:
                write_results(run_dir, results)
    return done
