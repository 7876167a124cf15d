"""Statistics for the study, numpy only: a paired two-way bootstrap over seeds and images, decisions
against a margin, and factorial effects (``docs/definitions.md``, "Intervals" and "Factorial effects")."""

from .bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    Interval,
    PairedSample,
    bootstrap_indices,
    cell_means,
    contrast,
    difference,
    percentile_interval,
    replicate_means,
)
from .decision import LESS_UNRESOLVED, MORE_UNRESOLVED, OUTCOMES, Comparison, compare, decide, direction
from .factorial import Design, Effect, interaction, main_effect

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "LESS_UNRESOLVED",
    "MORE_UNRESOLVED",
    "OUTCOMES",
    "Comparison",
    "Design",
    "Effect",
    "Interval",
    "PairedSample",
    "bootstrap_indices",
    "cell_means",
    "compare",
    "contrast",
    "decide",
    "difference",
    "direction",
    "interaction",
    "main_effect",
    "percentile_interval",
    "replicate_means",
]
