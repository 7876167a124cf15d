"""What :func:`shiftlab.conversion.convert` returns: the converted model and a typed report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

__all__ = ["INVARIANCE_SHIFTS", "BranchMerge", "ConversionEntry", "ConversionReport",
           "ConversionResult", "SharedPhases", "UnconvertedDownsampling"]


#: Circular shifts ``(dy, dx)`` (modulo ``H, W``) of :attr:`ConversionReport.invariance_check`.
INVARIANCE_SHIFTS = ((0, 1), (1, 0), (1, 1), (3, 5))


def _size(hw: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in hw)


def _where(path: str) -> str:
    return path or "<model>"


@dataclass
class ConversionEntry:
    """One changed layer.

    Attributes:
        path: module path in the model (``""`` for the model itself).
        change: ``"downsample"`` (a strided layer replaced), ``"padding"`` (made circular) or
            ``"blur"`` (a module wrapped to hold the BlurPool of the strided layer ``blur_of``).
        old_kind, new_kind: class names (``new_kind`` joins a ``Sequential``'s children by ``+``).
        old, new: one-line reprs.
        channels: channel count given to a new BlurPool/APS layer built for a pool, else None.
        channels_from: ``"example_input"`` (measured on the traced input, given or built) or the
            path of the layer it was inferred from (static guess, when there is no trace).
        old_shape, new_shape: the layer's output shape ``(N, C, H, W)`` on the traced input before
            and after (None without a trace, or where the trace did not reach the layer); for a
            strided conv whose BlurPool another module holds, ``new_shape`` is that BlurPool's.
        blur_at: the path, in the converted model, of the ``BlurPool2d`` that does this layer's
            subsampling (``downsample="blur"``); None for other changes.
        blur_of: for ``change="blur"``, the strided layer whose BlurPool this module holds.
    """

    path: str
    change: str
    old_kind: str
    new_kind: str
    old: str
    new: str
    channels: int | None = None
    channels_from: str | None = None
    old_shape: tuple[int, ...] | None = None
    new_shape: tuple[int, ...] | None = None
    blur_at: str | None = None
    blur_of: str | None = None

    @property
    def blur_moved(self) -> bool:
        """Whether this layer's BlurPool is held by another module (``placement="zhang"``)."""
        return self.blur_at is not None and self.path != "" and self.blur_at != self.path \
            and not self.blur_at.startswith(f"{self.path}.")

    @property
    def shape_changed(self) -> bool:
        return None not in (self.old_shape, self.new_shape) and self.old_shape != self.new_shape

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("old_shape", "new_shape"):
            d[key] = None if d[key] is None else list(d[key])
        return d


@dataclass(frozen=True)
class UnconvertedDownsampling:
    """A spatial reduction in the traced forward pass that :func:`convert` left as it is.

    Attributes:
        path: for ``kind="functional"`` the module whose ``forward`` made the call (``""`` for
            the model itself); for ``kind="layer"`` the layer's own path.
        kind: ``"functional"`` (a torch function called in a ``forward``: ``F.max_pool2d``,
            ``F.avg_pool2d``, ``F.interpolate``, ``x[..., ::2, ::2]``, a crop, ...) or ``"layer"``
            (a downsampling layer left as it is: under ``skip=``, or a fixed-phase BlurPool
            layer already in the model when converting to APS).
        op: the function's name (``max_pool2d``, ``interpolate``, ``__getitem__`` for indexing)
            or the layer's class name.
        in_size, out_size: ``(H, W)`` of its input and output on the traced input.
        after: the last module that finished before it ran (``"<input>"`` if none).
        before: the next module that started after it (``"<output>"`` if none).
        skipped: the layer is under ``skip=`` (left as it is on request; not warned about).
    """

    path: str
    kind: str
    op: str
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    after: str
    before: str
    skipped: bool = False

    def __str__(self) -> str:
        sizes = f"{_size(self.in_size)} -> {_size(self.out_size)}"
        if self.kind == "layer":
            return f"{self.op} layer {_where(self.path)}{' (skipped)' if self.skipped else ''}: {sizes}"
        return (f"{self.op}() in {_where(self.path)}.forward, after {self.after}, before "
                f"{self.before}: {sizes}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_size"], d["out_size"] = list(self.in_size), list(self.out_size)
        return d


@dataclass(frozen=True)
class BranchMerge:
    """Maps that went through different APS layers, combined by one operation.

    Each APS layer chooses its polyphase component from its own input, so after a circular shift
    of the image the branches can be shifted by different amounts; their sum (concatenation,
    product) is then no longer a shifted copy of the original, and the converted model is not
    exactly invariant. Typical cases: a residual block whose skip path is downsampled by its
    own strided 1x1 conv (or pool), a U-Net skip connection merged with an upsampled map.

    Attributes:
        path: the module whose ``forward`` combines them (``""`` for the model itself).
        op: the combining torch function (``add``, ``add_`` for ``+=``, ``cat``, ``mul``, ...).
        branches: per combined input, the downsampling layers (module paths, or ``op() in path``
            for functional ones) that only it went through, for the distinct inputs.
        size: ``(H, W)`` of the combined maps on the traced input.
    """

    path: str
    op: str
    branches: tuple[tuple[str, ...], ...]
    size: tuple[int, int]

    def __str__(self) -> str:
        sides = " | ".join(", ".join(b) if b else "(none)" for b in self.branches)
        return f"{self.op}() in {_where(self.path)}.forward at {_size(self.size)}: {sides}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "branches": [list(b) for b in self.branches],
                "size": list(self.size)}


@dataclass(frozen=True)
class SharedPhases:
    """A merge of APS branches that :func:`convert` made shift consistent by sharing phases.

    Where each combined map went through one APS layer of the same stride, on maps with the
    same downsampling history (a residual block whose main branch and shortcut both downsample),
    the APS layers that run later keep the choice of the first (:meth:`APSPool2d.follow`), so
    after a circular shift every branch moves by the same amount.

    Attributes:
        merge: the merge (no longer in ``report.merges``).
        leader: module path of the APS layer whose choice the branches keep, e.g.
            ``"layer2.0.conv1.pool"``; None when earlier ties already give them one choice.
        followers: module paths of the APS layers tied to ``leader`` for this merge, e.g.
            ``("layer2.0.downsample.0.pool",)``.
    """

    merge: BranchMerge
    leader: str | None
    followers: tuple[str, ...] = ()

    def __str__(self) -> str:
        ties = (f"{', '.join(self.followers)} follow{'s' if len(self.followers) == 1 else ''} "
                f"{self.leader}" if self.leader is not None else "shared by the ties above")
        return f"{self.merge}: {ties}"

    def to_dict(self) -> dict[str, Any]:
        return {"merge": self.merge.to_dict(), "leader": self.leader,
                "followers": list(self.followers)}


@dataclass
class ConversionReport:
    """What :func:`convert` changed and what it found in a traced forward pass.

    Attributes:
        downsample, padding, options: the options used.
        entries: changed layers, in module order.
        trace: the input of the traced forward pass, e.g. ``"example_input (2, 3, 32, 32)"`` or
            ``"built input (2, 3, 32, 32)"``, or why there was none (``"not traced: ..."``).
        unconverted: spatial reductions the conversion left as they are (empty without a trace
            and with ``downsample=None``).
        merges: combinations of maps that went through different APS layers, not made shift
            consistent by shared phases (empty without a trace and without APS layers).
        shared_phases: the merges made shift consistent by APS layers that keep another one's
            phase choice (``convert(..., share_phases=True)``, the default).
        notes: where the BlurPool placement differs from the rule (``placement="zhang"``): the
            stem conv kept strided, a fallback where the trace cannot tell (no trace, a function
            call, a module shared between paths), in words.
        invariance_check: max ``|f(T_d x) - f(x)|`` over every output element and the circular
            shifts :data:`INVARIANCE_SHIFTS` of the first traced sample ``x``, computed on a float64
            eval copy of the converted model; None without a trace, when the traced input is not
            one 4-D tensor, or when the output is a spatial map (no global pool). Measured, not
            asserted: a value near 0 supports, but does not prove, invariance.
    """

    downsample: str | None
    padding: str | None
    options: dict[str, Any] = field(default_factory=dict)
    entries: list[ConversionEntry] = field(default_factory=list)
    trace: str = "not traced"
    unconverted: list[UnconvertedDownsampling] = field(default_factory=list)
    merges: list[BranchMerge] = field(default_factory=list)
    shared_phases: list[SharedPhases] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    invariance_check: float | None = None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def counts(self) -> dict[str, int]:
        """Number of changed layers per ``"old_kind -> new_kind"`` (downsampling changes) or
        ``"old_kind: circular padding"`` (padding changes that keep the layer), or
        ``"old_kind -> new_kind (holds a blur)"`` (modules wrapped to hold a BlurPool)."""
        out: dict[str, int] = {}
        for e in self.entries:
            if e.change == "padding" and e.old_kind == e.new_kind:
                key = f"{e.old_kind}: circular padding"
            elif e.change == "blur":
                key = f"{e.old_kind} -> {e.new_kind} (holds a blur)"
            else:
                key = f"{e.old_kind} -> {e.new_kind}"
            out[key] = out.get(key, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "downsample": self.downsample,
            "padding": self.padding,
            "options": dict(self.options),
            "counts": self.counts(),
            "entries": [e.to_dict() for e in self.entries],
            "trace": self.trace,
            "unconverted": [u.to_dict() for u in self.unconverted],
            "merges": [m.to_dict() for m in self.merges],
            "shared_phases": [s.to_dict() for s in self.shared_phases],
            "notes": list(self.notes),
            "invariance_check": self.invariance_check,
        }

    def __str__(self) -> str:
        lines = [f"convert(downsample={self.downsample!r}, padding={self.padding!r}): "
                 f"{len(self.entries)} layer(s) changed"]
        if self.entries:
            rows = [("path", "change", "old", "new")]
            for e in self.entries:
                new = e.new_kind + ("" if e.channels is None else f"[{e.channels}ch]")
                new += _blur_note(e)
                if e.shape_changed:
                    new += f" (shape {e.old_shape} -> {e.new_shape})"
                rows.append((_where(e.path), e.change, _clip(e.old, 48), new))
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            lines += ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
                      for r in rows]
        lines.append(f"trace: {self.trace}")
        if self.notes:
            lines.append(f"BlurPool placement notes ({len(self.notes)}):")
            lines += [f"  {n}" for n in self.notes]
        if self.unconverted:
            lines.append(f"downsampling not converted ({len(self.unconverted)}):")
            lines += [f"  {u}" for u in self.unconverted]
        if self.shared_phases:
            lines.append(f"APS phases shared across branches ({len(self.shared_phases)}):")
            lines += [f"  {s}" for s in self.shared_phases]
        if self.merges:
            lines.append(f"APS phases not shared across branches ({len(self.merges)}); the "
                         "converted model is not exactly invariant:")
            lines += [f"  {m}" for m in self.merges]
        if self.invariance_check is not None:
            lines.append(f"invariance check (float64, circular shifts {list(INVARIANCE_SHIFTS)}): "
                         f"max |output change| {self.invariance_check:.3g}")
        return "\n".join(lines)


def _blur_note(e: ConversionEntry) -> str:
    """`` (blur of PATH)`` for a module that holds another layer's BlurPool, `` (blur at PATH)``
    for a strided layer whose BlurPool is outside its own replacement, else ``""``."""
    if e.blur_of is not None:
        return f" (blur of {_where(e.blur_of)})"
    if e.blur_moved:
        return f" (blur at {e.blur_at})"
    return ""


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


@dataclass
class ConversionResult:
    """The converted copy and its report; unpacks as ``model, report = convert(...)``."""

    model: nn.Module
    report: ConversionReport

    def __iter__(self) -> Iterator[Any]:
        yield self.model
        yield self.report
