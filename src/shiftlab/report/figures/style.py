"""The figures' shared look: one colour per model (hue = downsampling, shade = head), one line
style per head, matplotlib's object-oriented API on an Agg canvas (no pyplot state)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["DPI", "STYLE", "colour", "condition_label", "integer_ticks", "legend_below", "linestyle", "new_figure",
           "render"]

DPI = 110
STYLE: dict[RcKeyType, Any] = {
    "font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "xtick.labelsize": 8.5, "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#dddddd", "grid.linewidth": 0.6, "axes.axisbelow": True, "svg.fonttype": "path",
    "svg.hashsalt": "shiftlab",
}
#: downsampling -> colours of the heads fc, gap, gmp (dark to light).
_PALETTE = {
    "strided": ("#b2182b", "#ef6548", "#f4a582"),
    "maxpool": ("#08519c", "#4292c6", "#9ecae1"),
    "blurstrided": ("#006d2c", "#41ab5d", "#a1d99b"),
    "maxblur": ("#54278f", "#807dba", "#bcbddc"),
    "aps": ("#8c510a", "#d8a31a", "#dfc27d"),
    "allconv": ("#7a0177", "#dd3497", "#fa9fb5"),
    "avgpool": ("#00525a", "#1b9e9e", "#8fd3d3"),
    "learned": ("#5c5c00", "#a6a61a", "#d9d97a"),
    "learnedblur": ("#2d4a2d", "#6b8e6b", "#b5ccb5"),
}
_HEADS = ("fc", "gap", "gmp")
_LINES = {"fc": "-", "gap": "--", "gmp": ":"}
_CONDITIONS = {"centred": "trained centred", "augmented": "trained with translations", "circular": "circular padding",
               "transfer": "transfer", "transfer_control": "transfer control", "probe": "probe, zero padding",
               "probe_circular": "probe, circular padding"}


def _split(model: str) -> tuple[str, str]:
    down, _, head = model.rpartition("_")
    return down, head


def colour(model: str) -> str:
    """The colour of a zoo model (``<downsampling>_<head>``), the same in every figure.

    Example:
        >>> colour("strided_gap"), colour("maxpool_fc")
        ('#ef6548', '#08519c')
    """
    down, head = _split(model)
    shades = _PALETTE.get(down)
    if shades is None or head not in _HEADS:
        return "#555555"
    return shades[_HEADS.index(head)]


def linestyle(model: str) -> str:
    """Solid for FC heads, dashed for global average pool, dotted for global max pool."""
    return _LINES.get(_split(model)[1], "-.")


def condition_label(condition: str) -> str:
    return _CONDITIONS.get(condition, condition)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def integer_ticks(axis: Axis) -> None:
    """Ticks at integers only, on an axis with matplotlib's automatic locator (a no-op on any other)."""
    locator = axis.get_major_locator()
    if isinstance(locator, MaxNLocator):
        locator.set_params(integer=True)


def legend_below(fig: Figure, handles: list, labels: list[str]) -> None:
    """A legend under the axes, in as many columns as the longest label lets fit the figure's width."""
    if handles:
        widest = max(0.45 + 0.065 * len(label) for label in labels)  # inches at the legend's 8.5 pt font
        ncol = max(1, min(len(labels), int(fig.get_figwidth() / widest)))
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def _palette_png(png: bytes) -> bytes:
    """``png`` with its colours reduced to a 256-entry palette (median cut, no dithering).

    The figures are flat colours, antialiased edges and text: the palette image looks the same
    and is about a third of the size, which keeps a full study's page (15 models, every
    condition) under 2 MB. Pillow writes no timestamps, so rebuilds stay identical.
    """
    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def render(fig: Figure) -> tuple[bytes, str]:
    """PNG bytes (:data:`DPI`, a 256-colour palette) and SVG text of a figure, without timestamps
    (rebuilds are identical)."""
    png, svg = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context(STYLE):
        FigureCanvasAgg(fig).print_png(png, metadata={"Software": None})
        FigureCanvasSVG(fig).print_svg(svg, metadata={"Date": None, "Creator": None})
    FigureCanvasAgg(fig)
    return _palette_png(png.getvalue()), svg.getvalue().decode("utf-8")
