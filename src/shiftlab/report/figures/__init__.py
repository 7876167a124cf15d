"""The report's figures: each a function ``(StudyResults) -> Figure | None`` (None: the results
hold nothing to draw), listed with title and caption in :data:`FIGURES` in page order;
:func:`render` gives PNG bytes and SVG text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from shiftlab.study.results import StudyResults

from .aliasing import fig_aliasing
from .answer import fig_answer
from .distance import fig_distance
from .intervals import fig_consistency, fig_effects, fig_transfer_probe
from .layers import fig_layers
from .style import colour, render
from .training import fig_training

__all__ = ["FIGURES", "FigureSpec", "colour", "render"]


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: file stem, title, drawing function, caption (what to look at)."""

    name: str
    title: str
    draw: Callable[[StudyResults], Figure | None]
    caption: str


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("answer", "Agreement with the centred prediction against distance", fig_answer,
               "Trained on centred objects: the share of images whose class at a shift equals the centred one, "
               "against the distance the object moved; lines: shifts that are not multiples of the total stride S, "
               "stars: the multiples of S, at the same distance as the ring of other shifts at S. A star far above "
               "its line at S is aliasing (invariance only at the multiples); a flat line near 1 is invariance."),
    FigureSpec("consistency", "Consistency and conditional consistency", fig_consistency,
               "Each model's consistency (filled: the probability that two shifts of an image get the same class) and "
               "conditional consistency (open: the same over the images it classifies correctly at the centre), mean "
               "over seeds and images with 95% paired bootstrap intervals. Conditional consistency separates "
               "invariance from accuracy."),
    FigureSpec("aliasing", "The aliasing signature", fig_aliasing,
               "Left: fraction of images whose prediction at shift (0, dx) equals the unshifted one; dashed lines "
               "mark multiples of the total stride S. Right: the same grouped by dx modulo S. A network equivariant "
               "up to a global pool is invariant exactly at the multiples: a curve that peaks there and dips between "
               "is aliasing; a flat curve near 1 is invariance."),
    FigureSpec("layers", "Where equivariance breaks, layer by layer", fig_layers,
               "Relative L2 equivariance error of every layer (circular shifts, mean over seeds, log scale; exact "
               "zeros drawn at 1e-8). Black: shifts that are multiples of the layer's stride (aligned); red: other "
               "shifts against an ideal fractional shift (unaligned); dotted: interior only (border band masked). "
               "Yellow: downsampling layers. Red far above black = aliasing; solid black far above dotted black = a "
               "boundary (padding) effect."),
    FigureSpec("distance", "Accuracy and agreement against shift distance", fig_distance,
               "Top: accuracy when the object is moved on the canvas; bottom: agreement with the prediction for the "
               "unmoved object (clean consistency), side by side, against the Chebyshev distance of the move (mean "
               "over the shifts at that distance and over seeds). Agreement can stay high while accuracy falls (a "
               "model that keeps a wrong answer) and vice versa. The augmented models trained on shifts up to R "
               "(dotted line); beyond it is invariance, not in-distribution robustness."),
    FigureSpec("training", "Training curves", fig_training,
               "Training accuracy per epoch, one thin line per seed; the dashed line is the target accuracy a model "
               "must reach to count as converged. A model below it under-fits and is not compared on performance."),
    FigureSpec("transfer_probe", "Transfer and the position probe", fig_transfer_probe,
               "Left: consistency on classes trained only at the centre, with a trunk trained on translated objects of "
               "the other classes (solid) or on centred ones (hatched). Right: accuracy of the position probe (the "
               "class is the object's side) with zero padding (solid) and circular padding (hatched); chance is 0.5. "
               "95% intervals."),
    FigureSpec("effects", "Factorial effects", fig_effects,
               "Main effects (filled) and two-way interactions (open) of downsampling, head and training on "
               "consistency and test accuracy, each level against the baseline (strided, fc, centred), with 95% "
               "intervals; the grey band is the margin. Green: more, red: less (beyond the margin); "
               "light green / light red, dashed: more / less by an amount that may be smaller or larger than the "
               "margin (the interval excludes 0 but reaches the band); grey: about the same (inside the band); "
               "amber: inconclusive (holds 0 and reaches the band)."),
)
