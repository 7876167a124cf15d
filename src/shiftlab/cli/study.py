"""``shiftlab study``: train the zoo on real images, measure every model, write the report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shiftlab.study.config import CONDITIONS, StudyConfig
from shiftlab.study.runner import check_run_dir, run_study
from shiftlab.zoo import names as zoo_names

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  shiftlab study --quick                      # a ~1 minute smoke run (1 seed, 4 epochs, small sets)
  shiftlab study --out runs/mnist             # the default study on MNIST-5k (3 seeds)
  shiftlab study --data fashion-mnist --out runs/fashion
  shiftlab study --out runs/mnist --resume    # continue an interrupted study; nothing is lost
  shiftlab study --models fcn_gap,maxpool_fc --seeds 2

Each architecture is trained under two conditions (objects always centred; random translation
on the canvas), for each seed, then measured: centred accuracy, accuracy at every canvas position,
consistency under canvas and circular shifts, worst-case accuracy, the per-layer equivariance
profile, and the periodicity of the predictions with the total stride. The run directory gets
config.json, results.json, results.csv, checkpoints/, figures/ and report.html.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="train the architectures of the question on real images, measure them, write the report",
        description="Does an FCN have the translation invariance of a max-pooling network, and why does it perform as well? "
        "Train, measure and report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default="mnist-5k", help="dataset: mnist-5k (default), fashion-mnist, digits, idx, cifar10, folder")
    p.add_argument("--data-root", help="directory of the dataset files (for idx, cifar10, folder, or a non-default location)")
    p.add_argument("--out", default="runs/study", help="run directory; default runs/study")
    p.add_argument("--seeds", type=int, help="seeds per architecture and condition; default 3 (quick: 1)")
    p.add_argument("--epochs", type=int, help="training epochs; default 6 (quick: 4)")
    p.add_argument("--models", help=f"comma-separated subset of: {','.join(zoo_names())}")
    p.add_argument("--conditions", help=f"comma-separated subset of: {','.join(CONDITIONS)}")
    p.add_argument("--quick", action="store_true", help="small and fast: a smoke test of the whole pipeline, not evidence")
    p.add_argument("--resume", action="store_true", help="continue the study in --out from where it stopped")
    p.add_argument("--no-report", action="store_true", help="skip writing report.html")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The :class:`StudyConfig` the options ask for."""
    overrides: dict = {"data": args.data, "data_root": args.data_root}
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.models:
        overrides["models"] = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if args.conditions:
        overrides["conditions"] = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    return StudyConfig.quick(**overrides) if args.quick else StudyConfig(**overrides)


def run(args: argparse.Namespace) -> int:
    console = Console()
    config = config_from_args(args)
    out = Path(args.out)
    check_run_dir(config, out, args.resume)  # before any progress bar: a wrong --out fails at once
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        runs_task = bar.add_task("runs", total=None)
        step_task = bar.add_task("", total=None)

        def on_run(key: str, i: int, n: int) -> None:
            bar.update(runs_task, completed=i, total=n, description=f"runs ({key})")

        def on_train(event) -> None:  # ProgressEvent
            if event.kind == "step":
                done = (event.epoch - 1) * event.steps + event.step
                bar.update(step_task, completed=done, total=event.epochs * event.steps,
                           description=f"  train epoch {event.epoch}/{event.epochs} loss {event.loss:.3f}")

        def on_measure(done: int, total: int) -> None:
            bar.update(step_task, completed=done, total=total, description="  measure canvas shifts")

        results = run_study(config, out, resume=args.resume, on_run=on_run, on_train=on_train, on_measure=on_measure)
        bar.update(runs_task, completed=len(results["runs"]), total=len(results["runs"]), description="runs")
    console.print(f"{len(results['runs'])} runs in {time.perf_counter() - t0:.0f} s; results in {out / 'results.json'}")
    if not args.no_report:
        from shiftlab.report import build_report, verdict

        html = build_report(out)
        console.print(f"[bold]Answer:[/] {verdict(results).answer}")
        console.print(f"report: {html}")
    return 0
