"""``shiftlab study``: train the zoo's factorial on real images, measure every model, write the report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from shiftlab.cli.progress import TimeLeftColumn, WorkLeft, job_line
from shiftlab.cli.segment_study import run_segmentation, split_list
from shiftlab.measure import distributed
from shiftlab.report.fmt import fmt_count
from shiftlab.study.conditions import CONDITIONS, condition
from shiftlab.study.config import PRESETS, StudyConfig
from shiftlab.study.job import Job, record_paths
from shiftlab.study.measurements import SHIFT_SETS
from shiftlab.study.runner import check_run_dir, default_workers, jobs_of, run_study
from shiftlab.study.sharding import job_cost
from shiftlab.training.config import SCHEDULES
from shiftlab.zoo import names as zoo_names

__all__ = ["add_parser", "run"]

EPILOG = """\
presets:
  default  MNIST-5k; the two FCNs (Strided-CNN strided_gap, All-CNN allconv_gap), the classic max-pool
           CNN (maxpool_fc), the max-pool GAP network and the anti-aliased FCN; centred and augmented
           training; 2 seeds; an 8-epoch budget; 500 eval images (~15 minutes on 2 cores)
  quick    a smoke test of the whole pipeline (about 21 s on 2 cores; not evidence)
  full     every downsampling kind x FC and GAP heads; centred, augmented, circular padding and the
           position probe; 5 seeds; a 10-epoch budget; All-CNN also at the max-pool network's parameter count
           (455 jobs: hours; run it with --resume in several sittings)

examples:
  shiftlab study                                  # the default study into runs/study
  shiftlab study --quick --out runs/quick
  shiftlab study --preset full --data fashion-mnist --out runs/fashion
  shiftlab study --out runs/study --resume        # continue an interrupted study; nothing is lost
  shiftlab study --models strided_gap,maxpool_fc --conditions centred --seeds 5 --width 32
  shiftlab study --task segmentation --out runs/segmentation --resume   # U-Nets: do masks move with the input?

Every model trains for the same budget under a cosine learning-rate schedule (a model whose training
accuracy ends below the target is flagged as under-fitting), then is measured on the same evaluation
images at every shift of a set that covers every residue modulo the total stride and holds unaligned
shifts at the aligned ones' distance: consistency, agreement with the unshifted prediction and
accuracy by distance, worst-case accuracy, flip rate, the distance-matched aliasing signature and the
per-layer profile.
Differences between matched models get 95% paired bootstrap intervals; the report's verdict says "more" or "less"
when an interval clears the margin, "about the same" inside it, "more" or "less" by an amount that
may be smaller or larger than the margin when it excludes 0 but reaches the margin, and
"inconclusive" when it holds 0 and reaches the margin. The run directory gets config.json, runs/,
checkpoints/, results.json, results.csv, figures/ and report.html.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study",
        help="train the architectures of the question on real images, measure them, write the report",
        description="Does an FCN have the translation invariance of a max-pooling network, and why does it perform\n"
        "as well? Train a factorial of downsampling x head, measure, and report with confidence intervals.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                   help="classification (the question's study; default) or segmentation (U-Nets on scenes: does the mask "
                   "move with the input? docs/segmentation.md; its presets: default = full, 81 runs, an estimated 4 hours on "
                   "2 cores; quick)")
    p.add_argument("--preset", choices=list(PRESETS), default="default", help="what to run (see below); default: default")
    p.add_argument("--quick", action="store_true", help="same as --preset quick")
    p.add_argument("--data", help="dataset: mnist-5k (default), fashion-mnist, digits, idx, cifar10, folder")
    p.add_argument("--data-root", help="directory of the dataset files (for idx, cifar10, folder, or a non-default location)")
    p.add_argument("--out", default="runs/study", help="run directory; default runs/study")
    p.add_argument("--models", help="comma-separated zoo models (<downsampling>_<head>), e.g. strided_gap,maxpool_fc; "
                   f"from: {', '.join(zoo_names())}")
    p.add_argument("--conditions", help=f"comma-separated subset of: {', '.join(CONDITIONS)}")
    p.add_argument("--seeds", type=int, help="seeds per model and condition (default 2; full: 5)")
    p.add_argument("--width", type=int, help="channels of the first stage, then 2x and 4x (default 16)")
    p.add_argument("--capacity-widths", metavar="W,W",
                   help="capacity sweep: also train the key models (strided_gap, maxpool_fc, maxpool_gap, blurstrided_gap) "
                        "centred at these widths, e.g. 8,32 (full: 8,32; 'none' for no sweep)")
    p.add_argument("--max-epochs", type=int, help="the training budget: every model trains this many epochs under the "
                   "learning-rate schedule (default 8, full: 10; see the presets). With --stop-at-target, the most epochs, "
                   "and with --resume a larger value than the run directory's trains on the runs that stopped there "
                   "below the target")
    p.add_argument("--target-accuracy", type=float, help="training accuracy that counts as converged; a model below it "
                   "at the end of its budget is flagged as under-fitting (default 0.98)")
    p.add_argument("--schedule", choices=list(SCHEDULES), help="learning-rate schedule: cosine (from 1e-2 down to 0 over "
                   "the budget; default) or constant")
    p.add_argument("--stop-at-target", action="store_true", default=None,
                   help="stop each model at the first epoch that reaches the target accuracy (the second study design) "
                   "instead of training every model for the same budget")
    p.add_argument("--lr", type=float, help="peak learning rate of AdamW (default 1e-2; the second design used a constant 3e-3)")
    p.add_argument("--shift-set", choices=list(SHIFT_SETS), help="the canvas shift set: matched (default: unaligned shifts "
                   "at the aligned ones' distance, 121 shifts on MNIST) or residues (the second design's 97)")
    p.add_argument("--param-matched", metavar="MODEL,MODEL", help="global-pool models also trained (centred) at the width "
                   "whose parameter count matches the max-pool model with their head, e.g. allconv_gap "
                   "(full: allconv_gap; 'none' for none)")
    p.add_argument("--n-eval", type=int, help="evaluation images, the same for every model (default 500)")
    p.add_argument("--n-train", type=int, help="cap on training images, class-balanced (default: all; Fashion-MNIST "
                   "has 60,000: --n-train 4000 --n-test 1000 gives MNIST-5k's sizes)")
    p.add_argument("--n-test", type=int, help="cap on test images, class-balanced (default: all)")
    p.add_argument("--workers", type=int, default=None,
                   help=f"worker processes, one torch thread each (default: the number of cores, {default_workers()} here; "
                   "under torchrun, per rank: the cores over the ranks on the host); results are identical for any number")
    p.add_argument("--device", default="auto", help="where to train and measure: auto (CUDA when available, else the "
                   "CPU), cpu, cuda, cuda:N; default auto. On a GPU one worker runs by default; GPU results agree "
                   "with CPU results to float rounding, not bitwise")
    p.add_argument("--resume", action="store_true", help="continue the study in --out from where it stopped")
    p.add_argument("--no-report", action="store_true", help="skip writing report.html")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The :class:`StudyConfig` the options ask for."""
    return StudyConfig.preset(
        "quick" if args.quick else args.preset, data=args.data, data_root=args.data_root, models=split_list(args.models),
        conditions=split_list(args.conditions), seeds=args.seeds, width=args.width, max_epochs=args.max_epochs,
        target_accuracy=args.target_accuracy, n_eval=args.n_eval, capacity_widths=_widths(args.capacity_widths),
        n_train=args.n_train, n_test=args.n_test, schedule=args.schedule, stop_at_target=args.stop_at_target,
        lr=args.lr, shift_set=args.shift_set,
        param_matched=None if args.param_matched is None else
        () if args.param_matched.strip().lower() == "none" else split_list(args.param_matched),
    )


def _widths(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    try:
        return tuple(int(v) for v in split_list(value) or ())
    except ValueError:
        raise ValueError(f"--capacity-widths takes comma-separated integers such as 8,32 (or none), got {value!r}") from None


#: The canvas the time-left weights are computed on: the multiply-adds of every zoo model scale
#: alike with the canvas, so their ratios (all the estimate needs) hardly depend on it.
_NOMINAL_CANVAS = (48, 48)


def job_weights(config: StudyConfig, jobs: list[Job]) -> dict[str, float]:
    """Cost units of each job for the time-left estimate: its :func:`~shiftlab.study.sharding.job_cost`
    (multiply-adds x epoch budget) on a nominal 48x48 canvas."""
    return {job.key: float(job_cost(config, job, _NOMINAL_CANVAS)) for job in jobs}


def job_stages(job: Job) -> tuple[str, ...]:
    """The progress stages of ``job``, in order (as :func:`shiftlab.study.job.run_job` reports them)."""
    cond = condition(job.condition)
    if cond.probe:
        return ("train",)
    return ("train", "head", "measure") if cond.transfer else ("train", "measure")


class _Bars:
    """A bar for the jobs, with the time left from the work left (:class:`WorkLeft`), and a line per
    job in progress. It shows the study's jobs from the start (those finished, with ``resume``,
    as done) and, once the runner has decided, the jobs this process runs (:meth:`on_start`; a
    rank's share under torchrun)."""

    def __init__(self, bar: Progress, config: StudyConfig, out: Path, resume: bool, title: str = "jobs") -> None:
        self.bar, self.config, self.start = bar, config, time.monotonic()
        jobs = jobs_of(config)
        todo = [job for job in jobs if not (resume and record_paths(out, job.key)[0].exists())]
        self.jobs = bar.add_task(title, total=len(jobs), completed=len(jobs) - len(todo), finish_at=None)
        self.lines: dict[str, TaskID] = {}
        self.on_start(todo, len(jobs) - len(todo))

    def on_start(self, todo: list[Job], finished: int) -> None:
        """The jobs this process runs, and those finished before that count towards its total."""
        self.work = WorkLeft(job_weights(self.config, todo), {job.key: job_stages(job) for job in todo},
                             {job.key: job.condition for job in todo})
        self.bar.update(self.jobs, total=finished + len(todo), completed=finished, finish_at=None)

    def _time_left(self, now: float) -> None:
        left = self.work.seconds_left(now)
        self.bar.update(self.jobs, finish_at=None if left is None else now + left)

    def on_job(self, key: str, done: int, total: int) -> None:
        now = time.monotonic()
        self.work.finish(key, now)
        self.bar.update(self.jobs, completed=done, total=total)
        self._time_left(now)
        job_line(self.bar.console, key, done, total, now - self.start, self.work.seconds_left(now))
        line = self.lines.pop(key, None)
        if line is not None:
            self.bar.remove_task(line)

    def progress(self, key: str, stage: str, done: int, total: int) -> None:
        if key not in self.lines:
            self.lines[key] = self.bar.add_task("", total=total)
        what = {"train": "train epoch", "head": "new head epoch", "measure": "measure shifts"}[stage]
        self.bar.update(self.lines[key], completed=done, total=total, description=f"  {key}: {what}")
        now = time.monotonic()
        self.work.progress(key, stage, done, total, now)
        self._time_left(now)

    def hide(self) -> None:
        """Hide every bar (after an error: the error line is what matters)."""
        for task in self.bar.task_ids:
            self.bar.update(task, visible=False)


def run(args: argparse.Namespace) -> int:
    if args.task == "segmentation":
        return run_segmentation(args)
    console = Console()
    config = config_from_args(args)
    out = Path(args.out)
    rank, size = distributed.rank(), distributed.world_size()
    with distributed.all_or_none():  # before any progress bar: a wrong --out fails at once
        saved_cap = distributed.first_rank(lambda: check_run_dir(config, out, args.resume))
    if saved_cap is not None and rank == 0:
        console.print(f"--max-epochs {config.max_epochs} (the run directory had {saved_cap}): the runs that stopped "
                      f"at {fmt_count(saved_cap, 'epoch')} below the target accuracy train on from their checkpoints")
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeLeftColumn())
    with Progress(*columns, console=console) as bar:
        bars = _Bars(bar, config, out, args.resume, "jobs" if size == 1 else f"jobs of rank {rank} (of {size})")
        try:
            results = run_study(config, out, resume=args.resume, workers=args.workers, on_start=bars.on_start,
                                on_job=bars.on_job, progress=bars.progress, device=args.device)
        except Exception:
            bars.hide()
            raise
    if rank != 0:  # rank 0 reports and writes the report
        return 0
    ranks = "" if size == 1 else f" on {size} ranks"
    console.print(f"{fmt_count(len(results.runs), 'run')} in {time.perf_counter() - t0:.0f} s with "
                  f"{fmt_count(results.meta.workers, 'worker')}{ranks} on {results.meta.device}; results in "
                  f"{out / 'results.json'}")
    if not args.no_report:
        from shiftlab.report import build_report, verdict

        html = build_report(out)
        console.print("[bold]Answer:[/]\n" + verdict(results).summary, highlight=False)
        console.print(f"report: {html}")
    return 0
