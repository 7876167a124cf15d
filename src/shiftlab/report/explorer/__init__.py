"""The shift explorer (``docs/explorer.md``): move one evaluation image over the canvas and see
every chosen model's prediction at each position.

- :func:`explorer_table` ``(results_or_run_dir) -> ExplorerTable``: the data as a tidy table
  (one row per run, image and position) for a notebook;
- :func:`explorer_section` ``(results) -> str``: the report's interactive section;
- :func:`add_explorer` ``(run_dir)``: the data of a study run before the explorer existed,
  computed from its checkpoints (``shiftlab report RUN_DIR --explorer``).
"""

from .backfill import EXPLORER_SCOPES, ExplorerBackfill, add_explorer
from .section import explorer_css, explorer_section
from .table import ExplorerTable, explorer_table

__all__ = ["EXPLORER_SCOPES", "ExplorerBackfill", "ExplorerTable", "add_explorer", "explorer_css", "explorer_section",
           "explorer_table"]
