"""The report's figures, drawn with matplotlib's object-oriented API (Agg canvas, no pyplot state).

Each ``fig_*`` function takes the aggregated groups (:func:`shiftlab.report.aggregate.aggregate`)
and returns a :class:`matplotlib.figure.Figure`, or ``None`` when the results hold nothing to
draw. :data:`FIGURES` lists them in report order with their captions; :func:`render` turns a
figure into PNG bytes and SVG text.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from .aggregate import AUGMENTED, CENTRED, Group

__all__ = ["DPI", "FIGURES", "FigureSpec", "colour", "render", "condition_label", "short_layer_label"]

DPI = 110
#: Floor of the log axis of the layer profiles: errors at or below it (exact zeros) are drawn on it.
ERROR_FLOOR = 1e-8

_STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "svg.fonttype": "path",
    "svg.hashsalt": "shiftlab",
}

_COLOURS = {
    "maxpool_fc": "#1f4e9c",
    "maxpool_gap": "#4f9bd9",
    "strided_fc": "#b2182b",
    "fcn_gap": "#ef7d1a",
    "fcn_gmp": "#c99700",
    "blurpool_gap": "#2e9c57",
    "aps_gap": "#7b3fa0",
}
_EXTRA = ["#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22", "#393b79", "#637939", "#843c39"]
_CONDITION_LABELS = {CENTRED: "trained on centred objects", AUGMENTED: "trained with random translations"}


def colour(model: str, models: list[str] | None = None) -> str:
    """The colour of an architecture, the same in every figure."""
    if model in _COLOURS:
        return _COLOURS[model]
    others = [m for m in (models or [model]) if m not in _COLOURS]
    i = others.index(model) if model in others else abs(hash(model))
    return _EXTRA[i % len(_EXTRA)]


def condition_label(condition: str) -> str:
    return _CONDITION_LABELS.get(condition, condition)


def _linestyle(g: Group) -> str:
    return "-" if g.head == "fc" else ("--" if g.global_pool else "-.")


def _models(groups: dict[tuple[str, str], Group]) -> list[str]:
    return list(dict.fromkeys(m for m, _ in groups))


def _conditions(groups: dict[tuple[str, str], Group]) -> list[str]:
    return list(dict.fromkeys(c for _, c in groups))


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend_below(fig: Figure, handles: list, labels: list[str], ncol: int | None = None) -> None:
    if handles:
        fits = max(1, int(fig.get_figwidth() / 1.15))  # about 1.15 in per legend entry
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol or min(len(labels), fits), frameon=False)


# ---------------------------------------------------------------------------------------------
def fig_accuracy_by_distance(groups: dict[tuple[str, str], Group]) -> Figure | None:
    """Accuracy vs Chebyshev shift distance, one panel per condition, band = seed min-max."""
    conds, models = _conditions(groups), _models(groups)
    if not any("accuracy_by_distance" in g.series for g in groups.values()):
        return None
    with matplotlib.rc_context(_STYLE):
        fig = _figure(4.6 * len(conds) + 0.4, 3.7)
        axes = fig.subplots(1, len(conds), sharey=True, squeeze=False)[0]
        handles, labels = [], []
        for ax, cond in zip(axes, conds):
            for m in models:
                g = groups.get((m, cond))
                if g is None or "accuracy_by_distance" not in g.series:
                    continue
                s = g.series["accuracy_by_distance"]
                x = np.arange(len(s.mean))
                (line,) = ax.plot(x, s.mean, marker="o", ms=3.5, lw=1.8, ls=_linestyle(g), color=colour(m, models))
                if s.n > 1:
                    ax.fill_between(x, s.min, s.max, color=colour(m, models), alpha=0.1, lw=0)
                if m not in labels:
                    handles.append(line)
                    labels.append(m)
            ax.set_title(condition_label(cond))
            ax.set_xlabel("shift distance max(|dy|, |dx|) [px]")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel("accuracy")
        _legend_below(fig, handles, labels)
    return fig


def _grid(shifts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    dys, dxs = sorted(set(shifts[:, 0].tolist())), sorted(set(shifts[:, 1].tolist()))
    grid = np.full((len(dys), len(dxs)), np.nan)
    iy, ix = {v: i for i, v in enumerate(dys)}, {v: i for i, v in enumerate(dxs)}
    for (dy, dx), v in zip(shifts.tolist(), values):
        grid[iy[dy], ix[dx]] = v
    return grid, dys, dxs


def fig_accuracy_heatmaps(groups: dict[tuple[str, str], Group]) -> Figure | None:
    """Canvas accuracy over (dy, dx): rows conditions, columns architectures, one colour scale."""
    conds, models = _conditions(groups), _models(groups)
    cells = {}
    for key, g in groups.items():
        if "canvas.accuracy_by_shift" in g.series and "canvas.shifts" in g.series:
            cells[key] = _grid(g.series["canvas.shifts"].mean, g.series["canvas.accuracy_by_shift"].mean)
    if not cells:
        return None
    values = np.concatenate([c[0].ravel() for c in cells.values()])
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    if vmax - vmin < 1e-9:
        vmin, vmax = vmin - 0.01, vmax + 0.01
    with matplotlib.rc_context({**_STYLE, "axes.grid": False}):
        fig = _figure(1.75 * len(models) + 1.3, 1.62 * len(conds) + 0.75)
        axes = fig.subplots(len(conds), len(models), squeeze=False, sharex=True, sharey=True)
        im = None
        for r, cond in enumerate(conds):
            for c, m in enumerate(models):
                ax = axes[r][c]
                cell = cells.get((m, cond))
                if cell is None:
                    ax.set_axis_off()
                    continue
                grid, dys, dxs = cell
                im = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis", origin="upper", interpolation="nearest",
                               extent=(dxs[0] - 0.5, dxs[-1] + 0.5, dys[-1] + 0.5, dys[0] - 0.5))
                lim = int(max(abs(dxs[0]), abs(dxs[-1])))
                ax.set_xticks([-lim, 0, lim])
                ax.set_yticks([-lim, 0, lim])
                if r == 0:
                    ax.set_title(m, color=colour(m, models), fontsize=9, fontweight="bold")
                if c == 0:
                    ax.set_ylabel(f"{cond}\ndy [px]")
                if r == len(conds) - 1:
                    ax.set_xlabel("dx [px]")
        if im is not None:
            cb = fig.colorbar(im, ax=axes, shrink=0.9, pad=0.02, aspect=25)
            cb.set_label("accuracy")
    return fig


def fig_consistency(groups: dict[tuple[str, str], Group]) -> Figure | None:
    """Canvas and circular consistency bars per architecture and condition, error bars = seed std."""
    conds, models = _conditions(groups), _models(groups)
    kinds = [k for k in ("canvas", "circular") if any(g.mean(f"{k}.consistency") is not None for g in groups.values())]
    if not kinds:
        return None
    with matplotlib.rc_context(_STYLE):
        fig = _figure(max(7.0, 0.75 * len(models) * len(kinds) + 2.5) if len(kinds) == 1 else 11.0, 3.9)
        axes = fig.subplots(1, len(kinds), squeeze=False)[0]
        width = 0.8 / max(1, len(conds))
        hatches = ["", "///", "..", "xx"]
        lows = []
        for ax, kind in zip(axes, kinds):
            x = np.arange(len(models))
            for j, cond in enumerate(conds):
                means, stds, cols = [], [], []
                for m in models:
                    g = groups.get((m, cond))
                    st = g.stat(f"{kind}.consistency") if g else None
                    means.append(np.nan if st is None or st.mean is None else st.mean)
                    stds.append(0.0 if st is None or st.std is None else st.std)
                    cols.append(colour(m, models))
                pos = x - 0.4 + width * (j + 0.5)
                ax.bar(pos, means, width * 0.92, yerr=stds, color=cols, alpha=1.0 if j == 0 else 0.55,
                       hatch=hatches[j % len(hatches)], edgecolor="white" if j == 0 else "#333333", linewidth=0.4,
                       error_kw={"elinewidth": 1.0, "capsize": 2.5, "ecolor": "#222222"})
                lows.extend(np.asarray(means) - np.asarray(stds))
            ax.set_xticks(x, models, rotation=30, ha="right")
            ax.set_title(f"{kind} shifts")
            ax.set_ylabel("consistency")
            ax.grid(axis="x", visible=False)
        finite = [v for v in lows if np.isfinite(v)]
        bottom = max(0.0, math.floor((min(finite) - 0.03) * 20) / 20) if finite else 0.0
        for ax in axes:
            ax.set_ylim(bottom, 1.005)
            if bottom > 0:
                ax.text(0.0, 1.01, f"y axis starts at {bottom:.2f}", transform=ax.transAxes, fontsize=7.5, color="#666666",
                        va="bottom")
        from matplotlib.patches import Patch

        handles = [Patch(facecolor="#777777" if j == 0 else "#bbbbbb", hatch=hatches[j % len(hatches)],
                         edgecolor="#333333", label=condition_label(c)) for j, c in enumerate(conds)]
        _legend_below(fig, handles, [h.get_label() for h in handles])
    return fig


def short_layer_label(name: str, kind: str) -> str:
    """``features.2.blur`` + ``BlurPool2d`` -> ``2.blur blur``; ``head.1`` + ``AdaptiveAvgPool2d`` -> ``h1 GAP``."""
    abbrev = {
        "Conv2d": "conv", "ReLU": "relu", "MaxPool2d": "max", "AvgPool2d": "avg", "BlurPool2d": "blur",
        "MaxBlurPool2d": "maxblur", "APSPool2d": "aps", "MaxAPSPool2d": "maxaps", "AdaptiveAvgPool2d": "GAP",
        "AdaptiveMaxPool2d": "GMP", "BatchNorm2d": "bn", "Identity": "id",
    }.get(kind, kind.lower()[:7])
    path = name.replace("features.", "", 1) if name.startswith("features.") else name
    path = "h" + path[len("head."):] if path.startswith("head.") else path
    return f"{path} {abbrev}"


def fig_layer_profiles(groups: dict[tuple[str, str], Group]) -> Figure | None:
    """Per-layer aligned / unaligned error (log y), one panel per architecture (first seed, centred)."""
    models = _models(groups)
    conds = _conditions(groups)
    ref = CENTRED if CENTRED in conds else conds[0]
    panels = []
    for m in models:
        g = groups.get((m, ref))
        layers = ((g.first_run().get("equivariance") or {}).get("layers") or []) if g else []
        if layers:
            panels.append((g, layers))
    if not panels:
        return None
    from .aggregate import downsampling_flags

    ncol = min(4, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    series = [
        ("aligned_error", "aligned", "#1a1a1a", "-", "o"),
        ("unaligned_error", "unaligned", "#d62728", "-", "s"),
        ("aligned_interior_error", "aligned, interior", "#1a1a1a", ":", "o"),
        ("unaligned_interior_error", "unaligned, interior", "#d62728", ":", "s"),
    ]
    with matplotlib.rc_context(_STYLE):
        fig = _figure(2.9 * ncol + 0.3, 2.75 * nrow + 0.5)
        axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
        handles: dict[str, object] = {}
        for i, (g, layers) in enumerate(panels):
            ax = axes[i // ncol][i % ncol]
            x = np.arange(len(layers))
            for k, flag in enumerate(downsampling_flags(layers)):
                if flag:
                    ax.axvspan(k - 0.45, k + 0.45, color="#f4d35e", alpha=0.35, lw=0, zorder=0)
            for key, label, col, ls, mk in series:
                y = np.array([np.nan if l.get(key) is None else max(float(l[key]), ERROR_FLOOR) for l in layers])
                if np.all(np.isnan(y)):
                    continue
                (h,) = ax.plot(x, y, color=col, ls=ls, marker=mk, ms=3.2, lw=1.3 if ls == "-" else 1.0,
                               mfc=col if ls == "-" else "white")
                handles.setdefault(label, h)
            ax.set_yscale("log")
            ax.set_ylim(ERROR_FLOOR / 2, 3)
            ax.set_xticks(x, [short_layer_label(str(l.get("name")), str(l.get("kind", ""))) for l in layers],
                          rotation=90, fontsize=6.8)
            ax.set_xlim(-0.6, len(layers) - 0.4)
            ax.set_title(g.model, color=colour(g.model, models), fontweight="bold")
            ax.grid(axis="x", visible=False)
            if i % ncol == 0:
                ax.set_ylabel("relative L2 error")
        for j in range(len(panels), nrow * ncol):
            axes[j // ncol][j % ncol].set_axis_off()
        from matplotlib.patches import Patch

        labels = list(handles)
        hs = list(handles.values())
        hs.append(Patch(color="#f4d35e", alpha=0.5))
        labels.append("downsampling layer")
        _legend_below(fig, hs, labels, ncol=len(labels))
    return fig


def fig_periodicity(groups: dict[tuple[str, str], Group]) -> Figure | None:
    """Agreement with the unshifted prediction vs dx (dy = 0), lines at multiples of the total stride."""
    conds, models = _conditions(groups), _models(groups)
    if not any("periodicity.agreement_by_dx" in g.series for g in groups.values()):
        return None
    with matplotlib.rc_context(_STYLE):
        fig = _figure(4.6 * len(conds) + 0.4, 3.6)
        axes = fig.subplots(1, len(conds), sharey=True, squeeze=False)[0]
        handles, labels = [], []
        for ax, cond in zip(axes, conds):
            strides, xs = set(), []
            for m in models:
                g = groups.get((m, cond))
                if g is None or "periodicity.agreement_by_dx" not in g.series:
                    continue
                p = g.first_run()["periodicity"]
                x = np.asarray(p["dx_values"], dtype=float)
                s = g.series["periodicity.agreement_by_dx"]
                strides.add(int(p["stride"]))
                xs.extend(x.tolist())
                (line,) = ax.plot(x, s.mean, marker="o", ms=3.5, lw=1.6, ls=_linestyle(g), color=colour(m, models))
                if s.n > 1:
                    ax.fill_between(x, s.min, s.max, color=colour(m, models), alpha=0.12, lw=0)
                if m not in labels:
                    handles.append(line)
                    labels.append(m)
            if xs:
                lo, hi = min(xs), max(xs)
                for s in sorted(strides):
                    for k in range(int(math.ceil(lo / s)), int(math.floor(hi / s)) + 1):
                        vline = ax.axvline(k * s, color="#444444", ls=(0, (4, 3)), lw=1.1, alpha=0.75, zorder=1)
                        if "multiple of S" not in labels:
                            handles.append(vline)
                            labels.append("multiple of S")
                ax.set_xlim(lo - 0.5, hi + 0.5)
            ax.set_title(f"{condition_label(cond)} (S = {', '.join(map(str, sorted(strides)))})")
            ax.set_xlabel("horizontal shift dx [px] (dy = 0)")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel("agreement with unshifted prediction")
        _legend_below(fig, handles, labels)
    return fig


def fig_sources(groups: dict[tuple[str, str], Group], sources: dict[str, dict[str, float | None]] | None = None) -> Figure | None:
    """Where invariance comes from: mean gains in consistency and shifted accuracy (verdict C7)."""
    if not sources:
        return None
    metrics = [k for k in sources if any(v is not None for v in sources[k].values())]
    if not metrics:
        return None
    names = list(next(iter(sources.values())))
    with matplotlib.rc_context(_STYLE):
        fig = _figure(7.5, 2.9)
        ax = fig.subplots()
        y = np.arange(len(names))
        h = 0.8 / len(metrics)
        cols = ["#4c72b0", "#dd8452"]
        for j, metric in enumerate(metrics):
            vals = [np.nan if sources[metric][n] is None else sources[metric][n] for n in names]
            pos = y - 0.4 + h * (j + 0.5)
            ax.barh(pos, vals, h * 0.9, color=cols[j % 2], label=metric)
            for p, v in zip(pos, vals):
                if np.isfinite(v):
                    ax.text(v, p, f" {v:+.3f} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
                else:
                    ax.text(0, p, " not measured", va="center", ha="left", fontsize=8, color="#777777")
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.set_xlabel("mean gain (architecture/condition with the feature minus without)")
        lim = max([abs(v) for m in metrics for v in sources[m].values() if v is not None] + [0.01])
        ax.set_xlim(-lim * 1.45 if any((v or 0) < 0 for m in metrics for v in sources[m].values()) else -lim * 0.05,
                    lim * 1.45)
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right", frameon=False)
    return fig


@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: file stem, title, drawing function (by name, looked up in this module
    at call time) and caption (what to look at)."""

    name: str
    title: str
    function: str
    caption: str

    @property
    def draw(self) -> Callable[..., Figure | None]:
        return globals()[self.function]


FIGURES: list[FigureSpec] = [
    FigureSpec(
        "accuracy_by_distance", "Accuracy vs shift distance", "fig_accuracy_by_distance",
        "Test accuracy when the object is moved on the canvas, against the Chebyshev distance max(|dy|, |dx|) of the "
        "move; line = mean over seeds, band = min-max over seeds. Look at how fast each line falls when the model was "
        "trained on centred objects (left) and how flat it becomes with translation augmentation (right); solid lines "
        "are FC heads, dashed ones global-pool heads."),
    FigureSpec(
        "accuracy_heatmaps", "Accuracy over every shift", "fig_accuracy_heatmaps",
        "Accuracy at every shift (dy, dx) of the object on the canvas (mean over seeds), one colour scale for all "
        "panels. A uniformly bright square is a translation-invariant classifier; a bright centre with a dark rim means "
        "the network only recognises objects where it saw them in training; a checkerboard means stride aliasing."),
    FigureSpec(
        "consistency", "Consistency under canvas and circular shifts", "fig_consistency",
        "Consistency: the probability that two shifts of the same image get the same class (exact, Zhang 2019); "
        "error bars = standard deviation over seeds; solid bars trained centred, hatched bars with augmentation. "
        "Compare the architectures within a panel, then the two conditions of each architecture: a bar at 1 is "
        "exactly invariant."),
    FigureSpec(
        "layer_profiles", "Where equivariance breaks, layer by layer", "fig_layer_profiles",
        "Relative L2 equivariance error of every layer in execution order (first seed, centred condition, log "
        "scale; exact zeros are drawn at 1e-8). Black: shifts that are multiples of the layer's stride (aligned); red: "
        "other shifts, against an ideal fractional shift (unaligned); dotted: interior only (border band masked). "
        "Yellow columns are downsampling layers. Black dotted near the floor with solid black above it = padding "
        "(border) effects; red far above black = aliasing by the stride."),
    FigureSpec(
        "periodicity", "Periodicity: agreement vs horizontal shift", "fig_periodicity",
        "Fraction of images whose prediction at shift (0, dx) equals the unshifted prediction (mean over seeds, band = "
        "min-max). Dashed vertical lines mark multiples of the total stride S: a network that is equivariant up to its "
        "global pool is invariant exactly there, so the curve peaks on the lines and dips between them."),
    FigureSpec(
        "invariance_sources", "Where the invariance comes from", "fig_sources",
        "Mean gain in canvas consistency and in mean shifted accuracy from each source: augmentation (same "
        "architecture, augmented minus centred training), global pooling (same trunk, global-pool minus FC head, "
        "centred) and max-pooling (same head, max-pool minus stride-2 convolution, centred). The longest bar is the "
        "main source of the invariance the networks have."),
]


def render(fig: Figure) -> tuple[bytes, str]:
    """PNG bytes (``DPI``) and SVG text of a figure (no timestamps: rebuilding gives the same files)."""
    png, svg = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        FigureCanvasAgg(fig).print_png(png, metadata={"Software": None})
        FigureCanvasSVG(fig).print_svg(svg, metadata={"Date": None, "Creator": None})
    FigureCanvasAgg(fig)  # leave the figure attached to an Agg canvas
    return png.getvalue(), svg.getvalue().decode("utf-8")

