"""The study's training conditions (``docs/study.md``, "Conditions") and the data each one uses.

Every condition trains on canvases (objects placed on a blank canvas with room to move) and is
measured on the same evaluation images, so models compare as matched pairs within a condition.

- ``centred``: objects always in the middle; any invariance comes from the architecture.
- ``augmented``: random translations in ``[-R, R]^2``; measured in that range and beyond it.
- ``circular``: as ``centred`` with circular padding in every conv (the padding ablation).
- ``transfer`` (Biscione & Bowers 2021): the trunk learns the first half of the classes at random
  positions over the whole canvas; it is frozen and a new head learns the other half at the
  centre only; those classes are then measured everywhere on the canvas.
- ``transfer_control``: the same with the trunk trained on centred objects (so the difference to
  ``transfer`` is what translated training of *other* classes taught the trunk).
- ``probe`` / ``probe_circular`` (Kayhan & van Gemert 2020): the class is where the object is
  (left or right, ``2p`` pixels apart, a multiple of the total stride), with zero / circular
  padding; above-chance accuracy means the network sees absolute position.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab.data.canvas import translate

__all__ = ["CONDITIONS", "Condition", "condition", "probe_eval_set", "probe_train_set", "select_classes", "split_classes"]


@dataclass(frozen=True)
class Condition:
    """How one condition trains.

    Attributes:
        name: the condition's name.
        description: one line for the report.
        augment: ``"none"``, ``"range"`` (shifts in ``[-R, R]^2``) or ``"canvas"`` (every
            position of the canvas) for the training (the trunk's, under transfer).
        circular_padding: convs use circular padding instead of the study's padding.
        transfer: two phases: trunk on the first half of the classes, then a new head on the
            other half, centred, with the trunk frozen; measured on the second half.
        probe: the position probe (class = left / right placement).
    """

    name: str
    description: str
    augment: str = "none"
    circular_padding: bool = False
    transfer: bool = False
    probe: bool = False


_ALL = (
    Condition("centred", "objects always centred in training"),
    Condition("augmented", "random translations within [-R, R]^2 in training; measured in and beyond R",
              augment="range"),
    Condition("circular", "centred training, circular padding in every conv (padding ablation)",
              circular_padding=True),
    Condition("transfer", "trunk trained on half the classes at random canvas positions, frozen; new head "
              "trained on the other half at the centre only; measured on the other half",
              augment="canvas", transfer=True),
    Condition("transfer_control", "as transfer, but the trunk was trained on centred objects",
              transfer=True),
    Condition("probe", "position probe: the class is the object's position (left / right), zero padding",
              probe=True),
    Condition("probe_circular", "position probe with circular padding", circular_padding=True, probe=True),
)

#: Condition names in report order.
CONDITIONS: tuple[str, ...] = tuple(c.name for c in _ALL)
_BY_NAME = {c.name: c for c in _ALL}


def condition(name: str) -> Condition:
    """The :class:`Condition` called ``name``."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown condition {name!r}; choose from {list(CONDITIONS)}")
    return _BY_NAME[name]


def split_classes(n_classes: int) -> tuple[list[int], list[int]]:
    """The transfer split: the first ``n // 2`` classes (trunk) and the rest (new head)."""
    if n_classes < 2:
        raise ValueError(f"the transfer condition needs at least 2 classes, got {n_classes}")
    k = n_classes // 2
    return list(range(k)), list(range(k, n_classes))


def select_classes(images: Tensor, labels: Tensor, classes: list[int]) -> tuple[Tensor, Tensor]:
    """The images of ``classes``, with labels renumbered ``0 .. len(classes) - 1``.

    Shape: images ``(N, C, H, W)``, labels ``(N,)`` -> ``(M, C, H, W)``, ``(M,)``.
    """
    keep = torch.isin(labels, torch.tensor(classes))
    lookup = torch.full((max(int(labels.max()), *classes) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return images[keep], lookup[labels[keep]]


def _place(canvases: Tensor, dx: Tensor) -> Tensor:
    return translate(canvases, torch.stack([torch.zeros_like(dx), dx], dim=1))


def probe_train_set(canvases: Tensor, offset: int, seed: int) -> tuple[Tensor, Tensor]:
    """Each centred canvas moved to ``dx = -offset`` (class 0) or ``+offset`` (class 1), the side
    drawn per image from ``seed``.

    Shape: canvases ``(N, C, H, W)`` -> images ``(N, C, H, W)``, labels ``(N,)``.
    """
    side = torch.randint(0, 2, (canvases.shape[0],), generator=torch.Generator().manual_seed(seed))
    return _place(canvases, (2 * side - 1) * offset), side


def probe_eval_set(canvases: Tensor, offset: int) -> tuple[Tensor, Tensor]:
    """Every centred canvas at both positions: rows ``[0, N)`` at ``-offset`` (class 0), rows
    ``[N, 2N)`` at ``+offset`` (class 1), so image ``i`` is scored by rows ``i`` and ``N + i``.

    Shape: canvases ``(N, C, H, W)`` -> images ``(2N, C, H, W)``, labels ``(2N,)``.
    """
    n = canvases.shape[0]
    side = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return _place(canvases.repeat(2, 1, 1, 1), (2 * side - 1) * offset), side
