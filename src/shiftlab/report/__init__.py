"""The report: a view over a study's saved results (:class:`shiftlab.study.results.StudyResults`),
rebuilt without retraining (``docs/study.md``, "Report").

- :func:`verdict` ``(results) -> Verdict``: the question answered, first for each FCN
  (``.opening``, ``.summary``: a line each), then point by point (``.answer``: paragraphs;
  ``.points``: typed matched pairs, mechanism, performance, effects, transfer and probe, the
  opening's answers and signatures; ``.claims``: claims C1-C9);
- :func:`evaluate_claims` ``(results)``: the registry :data:`CLAIMS` of small evaluators, each
  returning a :class:`ClaimResult` (status, numbers, intervals, decisions);
- :func:`build_report` ``(run_dir) -> Path``: figures (PNG + SVG) and one self-contained
  ``report.html``;
- :func:`explorer_table` ``(results_or_run_dir) -> ExplorerTable``: what the report's shift
  explorer shows, one row per run, evaluation image and position (``docs/explorer.md``).

Example::

    from shiftlab.study.results import load_results
    from shiftlab.report import verdict
    print(verdict(load_results("runs/study")).summary)
"""

from .build import build_report
from .claims import CLAIMS, STATUSES, Claim, ClaimResult, evaluate_claims
from .explorer import ExplorerTable, explorer_table
from .points import ClaimPoint, EffectsPoint, MechanismPoint, PairPoint, PerformancePoint
from .thresholds import THRESHOLDS
from .verdict import Point, Verdict, verdict

__all__ = ["CLAIMS", "STATUSES", "THRESHOLDS", "Claim", "ClaimPoint", "ClaimResult", "EffectsPoint", "ExplorerTable",
           "MechanismPoint", "PairPoint", "PerformancePoint", "Point", "Verdict", "build_report", "evaluate_claims",
           "explorer_table", "verdict"]
