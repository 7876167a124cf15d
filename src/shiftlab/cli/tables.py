"""Rich tables of measurement results, as printed by ``shiftlab measure``."""

from __future__ import annotations

from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from shiftlab.measure.equivariance import INHERIT_FACTOR, EquivarianceResult, LayerEquivariance
from shiftlab.measure.invariance import InvarianceResult

__all__ = ["invariance_table", "equivariance_table", "equivariance_notes", "print_unabridged"]


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def _stride(stride: tuple[int, int]) -> str:
    return "x".join(str(s) for s in dict.fromkeys(stride))


def invariance_table(res: InvarianceResult) -> Table:
    """Two-column table of the invariance metrics; a yellow caption when the predictions are degenerate."""
    table = Table(title=f"Invariance ({res.mode} shifts, {res.shift_set}, {len(res.shifts)} shifts, {res.n_images} images)")
    if res.degenerate:
        table.caption = Text("caution: " + res.degenerate, style="bold yellow")
        table.caption_justify = "left"
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("consistency (2 random shifts agree)", f"{res.consistency:.4f} ± {res.consistency_sem:.4f}"),
        ("clean consistency (= unshifted class)", f"{res.clean_consistency:.4f}"),
        ("flip rate (1-px steps)", _fmt(res.flip_rate, ".4f")),
        ("mean |change of top-1 prob|", f"{res.top1_prob_change:.4f}"),
    ]
    if res.accuracy is not None:
        rows += [
            ("accuracy (unshifted)", f"{res.accuracy:.4f}"),
            ("mean accuracy over shifts", f"{res.mean_accuracy:.4f}"),
            ("worst-case accuracy (all shifts right)", f"{res.worst_case_accuracy:.4f}"),
        ]
    if res.majority_class_share is not None:
        rows.append(("most frequent class, share", f"{res.majority_class}, {res.majority_class_share:.1%}"))
    if res.mean_top1_prob is not None:
        rows.append(("mean top-1 probability", f"{res.mean_top1_prob:.3f} (uniform: {1 / res.n_classes:.3f})"))
    how = {"certified": "certified: one pass per residue modulo the total stride",
           "sampled": "sampled shifts", "exact": "exact: a pass per shift"}[res.method]
    rows.append(("method", how))
    if res.certificate is not None and not res.certificate.holds and res.mode == "circular":
        rows.append(("certificate", "not used: " + res.certificate.reason))
    rows.append(("device, batch size", f"{res.device}, {res.batch_size}"))
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def _missing_kind_notes(res: EquivarianceResult) -> list[str]:
    """Why a layer shows '-' for a kind of shift, for layers with a stride above 1 (at stride 1
    every integer shift is aligned, which the caption says once)."""
    span = max((max(abs(dy), abs(dx)) for dy, dx in res.shifts), default=0)
    integer = all(float(v).is_integer() for d in res.shifts for v in d)
    size = res.input_shape[1:]
    groups: dict[tuple[str, tuple[int, int]], list[LayerEquivariance]] = {}
    for layer in res.layers:
        # a layer whose stride is the whole image (a global pool) has no aligned shift to widen to
        reachable = any(s < n for s, n in zip(layer.stride, size, strict=True))
        if layer.aligned_error is None and max(layer.stride) > 1 and reachable:
            groups.setdefault(("aligned", layer.stride), []).append(layer)
        if layer.unaligned_error is None and max(layer.stride) > 1:
            groups.setdefault(("unaligned", layer.stride), []).append(layer)
    notes = []
    for (kind, stride), layers in groups.items():
        names = ("layers " if len(layers) > 1 else "layer ") + ", ".join(f"{lay.name} ({lay.kind})" for lay in layers)
        s = _stride(stride)
        if kind == "aligned":
            need = min(st for st, n in zip(stride, size, strict=True) if st < n)
            why = (f"stride {s} > shift range {span:g}" if integer and span < need
                   else f"no non-zero shift of the set is a multiple of stride {s}")
            notes.append(f"{names}: {why}, so no aligned errors ('-'); widen --shifts to {need} or more to see them")
        else:
            notes.append(f"{names}: every shift of the set is a multiple of stride {s}, so no unaligned errors ('-')")
    return notes


def equivariance_notes(res: EquivarianceResult) -> list[str]:
    """Notes under the per-layer table: layers with no shift of a kind ('-' cells) because of
    their stride, and strides that change outside any module."""
    return _missing_kind_notes(res) + [j.describe() for j in res.resolution_jumps()]


def equivariance_table(res: EquivarianceResult, tol: float = 1e-6) -> Group:
    """Per-layer profile: shape, stride, aligned / unaligned errors (full and interior), and where
    the error comes from (``breaks here: <cause>`` or ``inherited``, :meth:`EquivarianceResult.origins`).

    A rich ``Group``: the table, then its legend and the notes of :func:`equivariance_notes` as
    text that wraps at the console's width (a table caption is laid out at the table's width).
    """
    table = Table(title=f"Per-layer equivariance ({res.mode} shifts, {res.shift_set}; relative L2 error)",
                  show_edge=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("layer", "left"), ("shape", "left"), ("stride", "right"), ("aligned", "right"),
        ("in.", "right"), ("unaligned", "right"), ("in.", "right"), ("where", "left"),
    ]
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=col not in ("layer", "where"), min_width=11 if col == "where" else None,
                         overflow="fold" if col == "layer" else "ellipsis")  # a squeezed name wraps, never loses its end
    for layer, origin in zip(res.layers, res.origins(tol), strict=True):
        breaks = origin.startswith("breaks here")
        table.add_row(
            Text(f"{layer.name} {layer.kind}"), "x".join(map(str, layer.shape)), _stride(layer.stride),
            _fmt(layer.aligned_error), _fmt(layer.aligned_interior_error),
            _fmt(layer.unaligned_error), _fmt(layer.unaligned_interior_error),
            Text(origin, style="bold red" if breaks else "dim" if origin == "inherited" else ""),
        )
    legend = Text("aligned: shifts that are multiples of the stride (at stride 1: every integer shift); "
                  "in.: interior, border band masked; -: no shift of that kind, or no interior\n"
                  f"where: 'breaks here' = the layer adds error (> {INHERIT_FACTOR:g}x the largest error before it "
                  "at some shift), with its cause; 'inherited' = error carried in from earlier layers", style="dim")
    for note in equivariance_notes(res):
        legend.append("\nnote: " + note, style="yellow")
    return Group(table, legend)


def print_unabridged(console: Console, renderable: RenderableType) -> None:
    """Print a table, or a ``Group`` holding tables, at the full width of its tables when the
    console is no terminal (a file or a pipe: 80 columns by default), so that no cell is wrapped
    or cut (``layer1.0.conv1 Conv2d`` and ``layer1.0.conv2 Conv2d``, not ``layer1.0.…`` twice); in
    a terminal at the terminal's width, where a long layer name wraps (``overflow="fold"``)."""
    parts = renderable.renderables if isinstance(renderable, Group) else [renderable]
    unlimited = console.options.update_width(10_000)  # a table's measure is capped at the width it is offered
    need = max((console.measure(t, options=unlimited).maximum for t in parts if isinstance(t, Table)), default=0)
    if console.is_terminal or need <= console.width:
        console.print(renderable)
        return
    width = console.width
    console.width = need
    try:
        console.print(renderable)
    finally:
        console.width = width
