"""``shiftlab study --task segmentation``: train the U-Net factorial on scenes of real objects,
measure whether their masks move with their input, write the report (``docs/segmentation.md``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shiftlab.cli.progress import job_line, time_left
from shiftlab.report.fmt import fmt_count
from shiftlab.segmentation.config import SegStudyConfig
from shiftlab.segmentation.runner import run_seg_study
from shiftlab.segmentation.verdict import c10, seg_verdict
from shiftlab.study.runner import default_workers

__all__ = ["CLASSIFICATION_ONLY", "run_segmentation", "seg_config_from_args", "split_list"]

#: Options of ``shiftlab study`` that only the classification study reads (their dest names).
CLASSIFICATION_ONLY = ("data_root", "capacity_widths", "target_accuracy", "schedule", "stop_at_target", "shift_set",
                       "param_matched", "n_eval", "no_report")


def split_list(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple of its non-empty items (None when the option was not given)."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def seg_config_from_args(args: argparse.Namespace) -> SegStudyConfig:
    """The :class:`SegStudyConfig` the options ask for (``--preset default`` is the ``full`` study);
    ``ValueError`` naming any classification-only option that was given."""
    given = [name for name in CLASSIFICATION_ONLY if getattr(args, name, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"{flags} belong(s) to the classification study; the segmentation study takes --preset, "
                         "--quick, --data, --out, --models, --conditions, --seeds, --width, --max-epochs, --lr, "
                         "--n-train, --n-test, --workers, --device, --resume")
    preset = "quick" if args.quick or args.preset == "quick" else "full"
    return SegStudyConfig.preset(preset, data=args.data, models=split_list(args.models),
                                 conditions=split_list(args.conditions), seeds=args.seeds, width=args.width,
                                 epochs=args.max_epochs, lr=args.lr, n_train=args.n_train, n_test=args.n_test)


def run_segmentation(args: argparse.Namespace) -> int:
    console = Console()
    config = seg_config_from_args(args)
    out = Path(args.out)
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    finished = 0  # runs this process finished (the rate of the time-left estimate)
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("segmentation runs", total=config.seeds * len(config.models) * len(config.conditions))

        def on_job(key: str, done: int, total: int) -> None:
            nonlocal finished
            bar.update(task, completed=done, total=total)
            finished += 1
            elapsed = time.perf_counter() - t0
            job_line(console, key, done, total, elapsed, time_left(total - done, finished, elapsed))

        results = run_seg_study(config, out, resume=args.resume, workers=args.workers or default_workers(),
                                device="cpu" if args.device == "auto" else args.device, on_job=on_job)
    console.print(f"{fmt_count(len(results.runs), 'run')} in {time.perf_counter() - t0:.0f} s; results in {out / 'results.json'}")
    verdict = seg_verdict(results)
    console.print("[bold]Answer:[/] " + verdict.equivariant, highlight=False)
    for line in verdict.where + verdict.restores:
        console.print("  " + line, highlight=False)
    console.print(f"claim C10: {c10(results).status}; report: {out / 'report.html'}")
    return 0
