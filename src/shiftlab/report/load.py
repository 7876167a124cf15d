"""Read and check a study's ``results.json`` (format: :mod:`shiftlab.study.schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from shiftlab.study.schema import SCHEMA_VERSION

__all__ = ["RESULTS_FILE", "load_results", "check_results"]

RESULTS_FILE = "results.json"

_RUN_KEYS = (
    "model", "condition", "seed", "params", "total_stride", "train_seconds", "test_accuracy",
    "canvas", "circular", "accuracy_by_distance", "periodicity", "equivariance",
)
_META_KEYS = ("dataset", "max_shift")
_NESTED_KEYS = {
    "canvas": ("consistency", "shifts", "accuracy_by_shift"),
    "circular": ("consistency",),
    "periodicity": ("stride", "aligned", "unaligned", "dx_values", "agreement_by_dx"),
}
_HOW_TO_FIX = "rebuild it with `shiftlab study` (the report is only a view over a study's saved results)"


def load_results(run_dir: str | Path) -> dict:
    """Load ``run_dir/results.json`` and check its structure.

    Raises:
        FileNotFoundError: ``run_dir`` or its ``results.json`` does not exist.
        ValueError: the file is not valid JSON or does not follow the schema; the message says
            what is wrong and what to do.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist; give the directory a `shiftlab study` run wrote")
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a finished study run; {_HOW_TO_FIX}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is corrupt (not valid JSON: {err}); {_HOW_TO_FIX}") from err
    try:
        check_results(results)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return results


def check_results(results: object) -> None:
    """Raise ``ValueError`` unless ``results`` has the shape of a :class:`~shiftlab.study.schema.StudyResults`."""
    if not isinstance(results, dict):
        raise ValueError(f"expected a JSON object at the top level, got {type(results).__name__}; {_HOW_TO_FIX}")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version is {version!r}, this shiftlab reads version {SCHEMA_VERSION}; {_HOW_TO_FIX}")
    for key, kind in (("config", dict), ("meta", dict), ("runs", list)):
        if not isinstance(results.get(key), kind):
            raise ValueError(f"missing or malformed {key!r} (expected a JSON {kind.__name__}); {_HOW_TO_FIX}")
    missing = [k for k in _META_KEYS if k not in results["meta"]]
    if missing:
        raise ValueError(f"meta lacks {missing}; {_HOW_TO_FIX}")
    if not results["runs"]:
        raise ValueError(f"no runs recorded (the study stopped before any model finished); {_HOW_TO_FIX}")
    for i, run in enumerate(results["runs"]):
        if not isinstance(run, dict):
            raise ValueError(f"runs[{i}] is not an object; {_HOW_TO_FIX}")
        missing = [k for k in _RUN_KEYS if k not in run]
        if missing:
            raise ValueError(f"runs[{i}] ({run.get('model')!r}, {run.get('condition')!r}) lacks {missing}; {_HOW_TO_FIX}")
        for key in ("canvas", "circular", "periodicity", "equivariance"):
            if not isinstance(run[key], dict):
                raise ValueError(f"runs[{i}].{key} must be an object, got {type(run[key]).__name__}; {_HOW_TO_FIX}")
        for key, fields in _NESTED_KEYS.items():
            missing = [f for f in fields if f not in run[key]]
            if missing:
                raise ValueError(f"runs[{i}].{key} ({run['model']!r}, {run['condition']!r}) lacks {missing}; {_HOW_TO_FIX}")
        p = run["periodicity"]
        if not isinstance(p["dx_values"], list) or not isinstance(p["agreement_by_dx"], list) \
                or len(p["dx_values"]) != len(p["agreement_by_dx"]):
            raise ValueError(f"runs[{i}].periodicity: dx_values and agreement_by_dx must be lists of one length; {_HOW_TO_FIX}")
