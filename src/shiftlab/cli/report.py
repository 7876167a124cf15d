"""``shiftlab report RUN_DIR``: rebuild the figures and report.html of a study from its saved results."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shiftlab.report import build_report, verdict
from shiftlab.report.explorer import EXPLORER_SCOPES, ExplorerBackfill, add_explorer
from shiftlab.report.prose import claim_text
from shiftlab.segmentation.analysis import SegResults
from shiftlab.segmentation.runner import rebuild_seg_report, seg_results_in
from shiftlab.segmentation.verdict import c10, seg_verdict
from shiftlab.study.results import StudyResults, load_results

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  shiftlab report runs/study
  shiftlab report runs/study --verdict-only
  shiftlab report runs/study --explorer           # a study run before the shift explorer existed

Reads RUN_DIR/results.json (written by `shiftlab study`; or results.json.xz, as the runs published in
docs/results/ ship it) and writes RUN_DIR/figures/*.png and
*.svg and RUN_DIR/report.html: one self-contained page (figures embedded, nothing fetched from
the network) with the answer point by point, the factorial table with 95% intervals, main
effects and interactions, the figures, the shift explorer (move one image, see every model's
prediction at each position), claims C1-C9 with their measured status and the methods.
No retraining: the report is a view over saved results. --explorer first computes the explorer's
data that the runs lack from RUN_DIR/checkpoints/ (16 evaluation images, every class, at every
position; a few seconds per model on one core) and saves it in the runs' records and results.json.
"""

_STATUS_STYLE = {"confirmed": "bold green", "refuted": "bold red", "partly": "bold yellow",
                 "inconclusive": "yellow", "not measured": "dim"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild the report (figures + report.html) of a study run from its results.json",
        description="Build the figures and a self-contained report.html from a study's saved results.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `shiftlab study` (holds results.json)")
    p.add_argument("--verdict-only", action="store_true", help="print the answer and the claims; write no files")
    p.add_argument("--explorer", nargs="?", const="shown", choices=EXPLORER_SCOPES, metavar="{shown,all}",
                   help="first compute the shift explorer's data that the runs lack, from their checkpoints: "
                        "'shown' (the default) the runs the report shows (lowest seed of each model and condition), "
                        "'all' every seed and width")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the path of report.html")
    p.set_defaults(run=run)


def _print_verdict(console: Console, results: StudyResults) -> None:
    v = verdict(results)
    console.print("[bold]Answer[/]")
    for line in v.opening:
        console.print(line, highlight=False)
    if v.opening:
        console.print()
        console.print("[bold]The evidence, point by point[/]")
    for par in v.answer.split("\n\n"):
        console.print(par, highlight=False)
        console.print()
    table = Table(show_lines=False)
    table.add_column("claim")  # texts: shiftlab.report.CLAIMS
    table.add_column("status")
    table.add_column("evidence", overflow="fold")
    for c in v.claims:
        table.add_row(c.id, f"[{_STATUS_STYLE.get(c.status, '')}]{c.status}[/]", claim_text(c, results.analysis.margin))
    console.print(table)


def _print_backfill(console: Console, done: ExplorerBackfill, run_dir: Path) -> None:
    console.print(f"shift explorer: computed {len(done.computed)} runs in {done.seconds:.1f} s, "
                  f"{len(done.present)} had it already", highlight=False, soft_wrap=True)
    missing = [key for key, why in done.skipped.items() if why == "no checkpoint"]
    if missing:
        console.print(f"  [yellow]{len(missing)} runs have no checkpoint[/] in {run_dir / 'checkpoints'} (e.g. {missing[0]}): "
                      "their explorer data needs the trained models; rerun the study to get them",
                      highlight=False, soft_wrap=True)


def _segmentation(console: Console, run_dir: Path, results: SegResults, args: argparse.Namespace) -> int:
    """The report of a segmentation study (``shiftlab study --task segmentation``)."""
    if args.explorer:
        raise ValueError("--explorer is for the classification study; a segmentation study has no shift explorer")
    if not args.verdict_only:
        path = rebuild_seg_report(run_dir)
        if args.quiet:
            console.print(str(path), highlight=False, soft_wrap=True)
            return 0
    v = seg_verdict(results)
    for line in [v.equivariant, *v.where, *v.restores, f"C10: {c10(results).status}"]:
        console.print(line, highlight=False)
    if not args.verdict_only:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0


def run(args: argparse.Namespace) -> int:
    console = Console()
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} does not exist: give the --out directory of a `shiftlab study` run")
    if args.explorer and args.verdict_only:
        raise ValueError("--explorer writes the runs' explorer data and the report; --verdict-only writes nothing: "
                         "give one of them")
    seg = seg_results_in(run_dir)
    if seg is not None:
        return _segmentation(console, run_dir, seg, args)
    if args.explorer:
        def on_run(key: str, done: int, total: int) -> None:
            if not args.quiet:
                console.print(f"  explorer {done}/{total}: {key}", highlight=False)

        done = add_explorer(run_dir, scope=args.explorer, on_run=on_run)
        if not args.quiet:
            _print_backfill(console, done, run_dir)
    if args.verdict_only:
        _print_verdict(console, load_results(run_dir))
        return 0
    path = build_report(run_dir)
    if args.quiet:
        console.print(str(path), highlight=False, soft_wrap=True)
        return 0
    _print_verdict(console, load_results(run_dir))
    console.print(f"wrote {path} and figures in {run_dir / 'figures'}", highlight=False, soft_wrap=True)
    return 0
