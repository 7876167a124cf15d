"""The report: a view over a study's saved ``results.json`` (no retraining).

- :func:`build_report` ``(run_dir) -> Path``: figures (PNG + SVG) and a self-contained
  ``report.html`` (inline CSS, figures embedded as data URIs, nothing fetched from the network);
- :func:`verdict` ``(results) -> Verdict``: the answer to the question and the status of claims
  C1-C7 (DESIGN section 1), computed from the numbers with the thresholds of
  :mod:`shiftlab.report.verdict`;
- :func:`aggregate` ``(results)``: per model x condition statistics over seeds of every metric.
"""

from .aggregate import Group, Stat, aggregate
from .build import build_report
from .load import load_results
from .verdict import Claim, Verdict, verdict

__all__ = ["Claim", "Group", "Stat", "Verdict", "aggregate", "build_report", "load_results", "verdict"]
