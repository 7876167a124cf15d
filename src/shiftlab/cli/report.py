"""``shiftlab report RUN_DIR``: rebuild the figures and report.html of a study from its saved results."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from shiftlab.report import build_report, load_results, verdict

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  shiftlab report runs/fashion
  shiftlab report runs/fashion --verdict-only

Reads RUN_DIR/results.json (written by `shiftlab study`) and writes RUN_DIR/figures/*.png and
*.svg and RUN_DIR/report.html: one self-contained page (figures embedded, nothing fetched from
the network) with the answer to the question, claims C1-C7 with their measured status, the
figures, a results table and the methods. No retraining: the report is a view over saved results.
"""

_STATUS_STYLE = {"confirmed": "bold green", "refuted": "bold red", "partly": "bold yellow", "not measured": "dim"}


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
    p.add_argument("-q", "--quiet", action="store_true", help="print only the path of report.html")
    p.set_defaults(run=run)


def _print_verdict(console: Console, v) -> None:
    console.print("[bold]Answer[/]")
    for par in v.answer.split("\n\n"):
        console.print(par)
        console.print()
    table = Table(show_lines=False)
    table.add_column("claim")
    table.add_column("status")
    table.add_column("evidence", overflow="fold")
    for c in v.claims:
        table.add_row(c.id, f"[{_STATUS_STYLE.get(c.status, '')}]{c.status}[/]", c.evidence)
    console.print(table)


def run(args: argparse.Namespace) -> int:
    console = Console()
    run_dir = Path(args.run_dir)
    if getattr(args, "verdict_only", False):
        _print_verdict(console, verdict(load_results(run_dir)))
        return 0
    path = build_report(run_dir)
    if getattr(args, "quiet", False):
        console.print(str(path), highlight=False)
        return 0
    _print_verdict(console, verdict(load_results(run_dir)))
    console.print(f"wrote {path} and figures in {run_dir / 'figures'}", highlight=False)
    return 0
