"""The segmentation study's shifts (``docs/segmentation.md``, "The study"): near ones and a
distance-matched ring at the total stride.

- *near*: the 8 shifts at distance 1 (``max(|dy|, |dx|) = 1``) and the axis shifts at distance 2
  and ``S / 2``;
- *aligned at S*: the 8 non-zero multiples of the total stride ``S`` at distance ``S``:
  ``(+-S, 0)``, ``(0, +-S)``, ``(+-S, +-S)``;
- *unaligned at S*: 8 shifts at the same distance that are not multiples of ``S``:
  ``(+-S, +-S/2)``, ``(+-S/2, +-S)``.

The aliasing signature of a network is its agreement at the aligned ring minus that at the
unaligned ring: the same distance, so the same share of the canvas moves past the border.
"""

from __future__ import annotations

__all__ = ["SHIFT_KINDS", "seg_shifts", "shift_kind"]

#: The kinds of non-zero shift, in report order.
SHIFT_KINDS = ("near", "aligned", "unaligned")


def seg_shifts(stride: int) -> list[tuple[int, int]]:
    """``(0, 0)`` first, then the near shifts, then the ring at distance ``stride`` (module notes).

    Example:
        >>> s = seg_shifts(8)
        >>> len(s), s[0], [shift_kind(d, 8) for d in s].count("unaligned")
        (33, (0, 0), 8)
    """
    if stride < 2 or stride % 2:
        raise ValueError(f"the total stride must be even and >= 2, got {stride}")
    near = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    for d in sorted({2, stride // 2} - {1}):
        near += [(0, d), (0, -d), (d, 0), (-d, 0)]
    s, h = stride, stride // 2
    aligned = [(s, 0), (-s, 0), (0, s), (0, -s), (s, s), (s, -s), (-s, s), (-s, -s)]
    unaligned = [(a * s, b * h) for a in (1, -1) for b in (1, -1)] + [(b * h, a * s) for a in (1, -1) for b in (1, -1)]
    return [(0, 0), *near, *aligned, *unaligned]


def shift_kind(d: tuple[int, int], stride: int) -> str:
    """``"centre"`` for ``(0, 0)``, else one of :data:`SHIFT_KINDS` (module notes).

    Example:
        >>> shift_kind((8, 0), 8), shift_kind((8, 4), 8), shift_kind((0, 1), 8)
        ('aligned', 'unaligned', 'near')
    """
    dy, dx = d
    if (dy, dx) == (0, 0):
        return "centre"
    if max(abs(dy), abs(dx)) < stride:
        return "near"
    return "aligned" if dy % stride == 0 and dx % stride == 0 else "unaligned"
