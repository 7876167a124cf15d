"""Shared APS phases for :func:`shiftlab.conversion.convert`: the merges a trace found, made shift
consistent where one phase choice can serve every branch.

A merge (:class:`BranchMerge`) combines maps whose lineages (the downsampling calls they went
through, :mod:`shiftlab.conversion._trace`) differ by APS layers. After a circular shift each APS
layer moves its output by an amount that depends on the phase it chose, so the branches can move
by different amounts. When every combined map went through exactly one APS layer beyond what they
share, all of the same input and output size, each run once and each applied to a map with that
shared history, the branches' inputs move alike; if every APS layer keeps the same phase (the one
that runs first chooses, the others follow it: :meth:`shiftlab.nn.APSPool2d.follow`), so do their
outputs, and the merge is a shifted copy of the unshifted one. This is the ResNet downsampling
block (main branch conv stride 2, shortcut conv1x1 stride 2), built this way by Chaman & Dokmanic.

Ties are made in execution order; a layer tied for one merge counts as its leader in later ones
(a second merge in the same block needs no new tie, and branches that each carry a tied pair can
be tied through their leaders). Ties that the model already has (``follow`` called by its author)
count the same way.
"""

from __future__ import annotations

from collections import Counter

from torch import nn

from shiftlab.nn import APSPool2d

from ._plan import under
from ._report import BranchMerge, SharedPhases
from ._trace import Event, Trace


def aps_layer(model: nn.Module, path: str) -> tuple[str, APSPool2d] | None:
    """``(path, layer)`` of the one :class:`APSPool2d` at or inside module ``path`` of ``model``
    (``"<model>"`` is the model), or None when there is not exactly one."""
    module = model.get_submodule("" if path == "<model>" else path)
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, APSPool2d)]
    if len(found) != 1:
        return None
    name, layer = found[0]
    return ".".join(p for p in (path if path != "<model>" else "", name) if p), layer


class _Sharing:
    """The ties of one conversion: event index -> the event whose choice it keeps."""

    def __init__(self, trace: Trace, model: nn.Module, skip: list[str]) -> None:
        self.events, self.model, self.skip = trace.events, model, skip
        self.calls = Counter(e.label for e in trace.events)
        self.layers = {i: self._layer(e) for i, e in enumerate(trace.events)}
        index = {id(found[1]): i for i, found in self.layers.items() if found is not None}
        self.leader_of = {i: index[id(found[1].leader)] for i, found in self.layers.items()
                          if found is not None and id(found[1].leader) in index}

    def _layer(self, event: Event) -> tuple[str, APSPool2d] | None:
        """The APS layer of an adaptive event that ran once and is not under ``skip``."""
        if not event.adaptive or self.calls[event.label] != 1 or under(event.label, self.skip):
            return None
        return aps_layer(self.model, event.label)

    def root(self, event: int) -> int:
        while event in self.leader_of:
            event = self.leader_of[event]
        return event

    def roots(self, lineage: frozenset[int]) -> frozenset[int]:
        return frozenset(self.root(e) for e in lineage)

    def tie(self, merge: BranchMerge, lineages: tuple[frozenset[int], ...],
            new: bool) -> SharedPhases | None:
        """The report entry of ``merge`` if its branches keep one phase choice, made so by new
        ties where one choice can serve them all (``new``); else None (the merge stays)."""
        shared = [self.roots(lineage) for lineage in lineages]
        common = frozenset.intersection(*shared)
        extra = [lineage - common for lineage in shared]
        if not any(extra):
            return SharedPhases(merge, None)
        if not new or any(len(e) != 1 for e in extra):
            return None
        branch = sorted({e for (e,) in extra})  # execution order: the first chooses
        sizes = (self.events[branch[0]].in_size, self.events[branch[0]].out_size)
        if merge.size == (1, 1) and sizes[1] != (1, 1):
            return None  # branches pooled to 1 x 1 before the merge: nothing to share
        picked: list[tuple[str, APSPool2d]] = []
        for e in branch:
            found, event = self.layers[e], self.events[e]
            if (found is None or self.roots(event.source) != common
                    or (event.in_size, event.out_size) != sizes):
                return None
            picked.append(found)
        (lead_path, lead), rest = picked[0], picked[1:]
        for e, (_, layer) in zip(branch[1:], rest, strict=True):
            layer.follow(lead, name=lead_path)
            self.leader_of[e] = branch[0]
        return SharedPhases(merge, lead_path, tuple(path for path, _ in rest))


def share_phases(trace: Trace, model: nn.Module, skip: list[str],
                 tie: bool) -> tuple[list[SharedPhases], list[BranchMerge]]:
    """Make the merges of ``trace`` (a trace of ``model`` before its strided layers were replaced
    by the ones now in ``model``) shift consistent where one phase choice can serve them.

    Returns ``(shared, unshared)``: the report entries of the merges made consistent, in
    execution order, and the merges left as they are. With ``tie=False`` no layer is tied, and
    only the merges that ties already in the model make consistent are ``shared``. A merge of
    ``1 x 1`` maps is shift consistent at this input size whatever the phases: it is tied where
    its APS layers end at ``1 x 1`` (the same block on a larger input merges larger maps), and
    never ``unshared``.
    """
    sharing = _Sharing(trace, model, skip)
    shared: list[SharedPhases] = []
    unshared: list[BranchMerge] = []
    for merge, lineages in zip(trace.merges, trace.merge_lineages, strict=True):
        entry = sharing.tie(merge, lineages, tie)
        if entry is not None:
            shared.append(entry)
        elif merge.size != (1, 1):
            unshared.append(merge)
    return shared, unshared
