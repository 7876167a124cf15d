"""Rich tables of measurement results, as printed by ``shiftlab measure``."""

from __future__ import annotations

from rich.table import Table

from shiftlab.measure.equivariance import EquivarianceResult
from shiftlab.measure.invariance import InvarianceResult

__all__ = ["invariance_table", "equivariance_table"]


def _fmt(v: float | None, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def invariance_table(res: InvarianceResult) -> Table:
    """Two-column table of the invariance metrics."""
    table = Table(title=f"Invariance ({res.mode} shifts, {res.shift_set}, {len(res.shifts)} shifts, {res.n_images} images)")
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
    how = {"certified": "certified: one pass per residue modulo the total stride",
           "sampled": "sampled shifts", "exact": "exact: a pass per shift"}[res.method]
    rows.append(("method", how))
    if res.certificate is not None and not res.certificate.holds and res.mode == "circular":
        rows.append(("certificate", "not used: " + res.certificate.reason))
    rows.append(("device, batch size", f"{res.device}, {res.batch_size}"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def equivariance_table(res: EquivarianceResult, tol: float = 1e-6) -> Table:
    """Per-layer profile: shape, stride, aligned / unaligned errors (full and interior), diagnosis."""
    table = Table(
        title=f"Per-layer equivariance ({res.mode} shifts, {res.shift_set}; relative L2 error)",
        caption="aligned: shifts that are multiples of the stride; in.: interior, border band masked",
    )
    for col, justify in [
        ("layer", "left"), ("shape", "left"), ("stride", "right"), ("aligned", "right"),
        ("in.", "right"), ("unaligned", "right"), ("in.", "right"), ("cause", "left"),
    ]:
        table.add_column(col, justify=justify, no_wrap=col not in ("layer", "cause"), min_width=12 if col == "layer" else None)
    for l in res.layers:
        stride = "x".join(str(s) for s in dict.fromkeys(l.stride))
        table.add_row(
            f"{l.name} {l.kind}", "x".join(map(str, l.shape)), stride,
            _fmt(l.aligned_error), _fmt(l.aligned_interior_error), _fmt(l.unaligned_error), _fmt(l.unaligned_interior_error),
            l.diagnose(tol),
        )
    return table
