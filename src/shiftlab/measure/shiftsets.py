"""Sets of shifts ``S`` over which invariance and equivariance are measured (``docs/definitions.md``, "Shifts").

A shift set is given as

- an ``int`` ``m``: every integer ``d`` in ``[-m, m]^2`` (``(2m + 1)^2`` shifts);
- a list of ``(dy, dx)`` pairs, integer or fractional;
- a :class:`ShiftSet`, e.g. :meth:`ShiftSet.random` for a seeded random sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from shiftlab.measure.shifts import is_integer_shift

__all__ = ["ShiftSet", "as_shift_set", "ShiftSpec", "offset_grid"]


def offset_grid(max_dy: int, max_dx: int, step: int = 1) -> Tensor:
    """Every ``(k * step, l * step)`` in ``[-max_dy, max_dy] x [-max_dx, max_dx]``, row-major (``dy`` outer).

    Shape:
        - output: ``(P, 2)`` int64, ``P = (2 floor(max_dy / step) + 1) (2 floor(max_dx / step) + 1)``
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    dy = torch.arange(-(max_dy // step), max_dy // step + 1) * step
    dx = torch.arange(-(max_dx // step), max_dx // step + 1) * step
    return torch.cartesian_prod(dy, dx).reshape(-1, 2)


#: The most shifts one set may hold (2,000 x 2,000 shifts per image): a bigger set is a typo or a
#: misunderstanding (``shifts=m`` means every shift in ``[-m, m]^2``), refused before it is built.
MAX_SHIFTS = 4_000_000


def _check_count(n: int, what: str) -> None:
    if n > MAX_SHIFTS:
        raise ValueError(f"{what} is {n:,} shifts per image, more than the {MAX_SHIFTS:,} shiftlab measures; a shift "
                         "must also be smaller than the image. Use a smaller range, or ShiftSet.random(n, m) to sample")


@dataclass(frozen=True)
class ShiftSet:
    """An ordered set of shifts.

    Attributes:
        offsets: ``[S, 2]`` float64 tensor of ``(dy, dx)`` rows, without duplicates.
        label: how the set was made, for reports (``"grid(2)"``, ``"list"``, ``"random(64, 4, seed=0)"``).
    """

    offsets: Tensor
    label: str = "list"

    def __post_init__(self) -> None:
        off = torch.as_tensor(self.offsets, dtype=torch.float64).reshape(-1, 2)
        if off.shape[0] == 0:
            raise ValueError("the shift set is empty; give at least one shift, e.g. shifts=1")
        if not torch.isfinite(off).all():
            raise ValueError("shifts must be finite numbers")
        if torch.unique(off, dim=0).shape[0] != off.shape[0]:
            raise ValueError("the shift set has duplicate shifts; each shift must appear once")
        object.__setattr__(self, "offsets", off)

    @classmethod
    def grid(cls, m: int, step: int = 1) -> ShiftSet:
        """Every ``d`` in ``{-m, ..., m}^2`` (multiples of ``step``), row-major from ``(-m, -m)``.
        More than :data:`MAX_SHIFTS` shifts are refused before anything is built."""
        if not isinstance(m, int) or isinstance(m, bool) or m < 0:
            raise ValueError(f"a shift range must be a non-negative int, got {m!r}")
        _check_count((2 * (m // max(step, 1)) + 1) ** 2, f"shifts={m} (every d in [-{m}, {m}]^2)")
        label = f"grid({m})" if step == 1 else f"grid({m}, step={step})"
        return cls(offset_grid(m, m, step).to(torch.float64), label=label)

    @classmethod
    def full(cls, height: int, width: int) -> ShiftSet:
        """Every circular shift of an ``height x width`` image: ``(dy, dx)`` in
        ``[0, height) x [0, width)`` (the full circular shift profile), row-major.

        Example:
            >>> len(ShiftSet.full(4, 6)), ShiftSet.full(4, 6).as_tuples()[:3]
            (24, [(0, 0), (0, 1), (0, 2)])
        """
        if min(height, width) < 1:
            raise ValueError(f"an image size must be >= 1, got {height}x{width}")
        _check_count(height * width, f"the full circular profile of {height}x{width} images")
        off = torch.cartesian_prod(torch.arange(height), torch.arange(width)).reshape(-1, 2)
        return cls(off.to(torch.float64), label=f"full({height}x{width})")

    @classmethod
    def from_list(cls, shifts: Iterable[Sequence[float]]) -> ShiftSet:
        """An explicit list of ``(dy, dx)`` pairs."""
        rows = [tuple(s) for s in shifts]
        if any(len(r) != 2 for r in rows):
            raise ValueError("each shift must be a pair (dy, dx)")
        return cls(torch.tensor(rows, dtype=torch.float64).reshape(-1, 2), label="list")

    @classmethod
    def random(cls, n: int, max_shift: float, *, seed: int = 0, fractional: bool = False) -> ShiftSet:
        """``n`` distinct shifts drawn uniformly from ``[-max_shift, max_shift]^2`` with a seed.

        Integer shifts are drawn without replacement from the grid; fractional ones uniformly.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        _check_count(n, f"ShiftSet.random({n}, ...)")
        gen = torch.Generator().manual_seed(seed)
        if fractional:
            off = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1) * max_shift
        else:
            full = cls.grid(int(max_shift)).offsets
            if n > full.shape[0]:
                raise ValueError(f"cannot draw {n} distinct integer shifts from [-{int(max_shift)}, {int(max_shift)}]^2 "
                                 f"({full.shape[0]} exist)")
            off = full[torch.randperm(full.shape[0], generator=gen)[:n]]
        kind = "fractional" if fractional else "integer"
        return cls(off, label=f"random({n}, {max_shift}, {kind}, seed={seed})")

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    @property
    def is_integer(self) -> bool:
        """True when every shift is a whole number of pixels."""
        return is_integer_shift(self.offsets)

    @property
    def max_abs(self) -> tuple[float, float]:
        """Largest ``|dy|`` and ``|dx|`` in the set."""
        m = self.offsets.abs().max(dim=0).values
        return float(m[0]), float(m[1])

    def as_tuples(self) -> list[tuple[float, float]] | list[tuple[int, int]]:
        """The shifts as Python pairs (ints when integral), JSON-friendly."""
        if self.is_integer:
            return [(int(a), int(b)) for a, b in self.offsets.tolist()]
        return [(float(a), float(b)) for a, b in self.offsets.tolist()]

    def index_of(self, dy: float, dx: float) -> int | None:
        """Position of ``(dy, dx)`` in the set, or None."""
        hit = ((self.offsets[:, 0] == dy) & (self.offsets[:, 1] == dx)).nonzero()
        return int(hit[0, 0]) if hit.numel() else None

    def unit_step_pairs(self) -> Tensor:
        """Pairs ``[P, 2]`` of indices ``(a, b)`` with ``shift_b = shift_a + e``, ``e`` in ``{(1, 0), (0, 1)}``.

        These are the 1-pixel steps inside the set used by the flip rate (Azulay & Weiss).
        """
        key = {tuple(r): i for i, r in enumerate(self.offsets.tolist())}
        pairs = [
            (i, key[(dy + ey, dx + ex)])
            for (dy, dx), i in key.items()
            for ey, ex in ((1.0, 0.0), (0.0, 1.0))
            if (dy + ey, dx + ex) in key
        ]
        return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)

    def check_fits(self, height: int, width: int, mode: str) -> None:
        """Raise ValueError when a shift is too large for an ``height x width`` image.

        A shift of ``H`` or more rows is the identity again (circular) or empties the image (zeros).
        """
        _check_range(*self.max_abs, height, width, mode)


def _check_range(my: float, mx: float, height: int, width: int, mode: str) -> None:
    if my >= height or mx >= width:
        raise ValueError(
            f"a shift of ({my:g}, {mx:g}) px is too large for {height}x{width} images in {mode!r} mode "
            f"(each |dy| must be < {height} and |dx| < {width}); use a smaller shift range"
        )


ShiftSpec = int | Sequence[Sequence[float]] | ShiftSet


def as_shift_set(spec: ShiftSpec, images: object = None, mode: str = "circular") -> ShiftSet:
    """Turn an int, a list of pairs or a :class:`ShiftSet` into a :class:`ShiftSet`.

    With ``images`` (``[N, C, H, W]``), an int range that is too large for them is refused before
    the set is built (``shifts=999`` on 8 x 8 images fails at once, not after building 4 million
    shifts); ``mode="crop"`` windows are checked later, against the crop size."""
    if isinstance(spec, ShiftSet):
        return spec
    if isinstance(spec, bool):
        raise TypeError("shifts must be an int, a list of (dy, dx) pairs or a ShiftSet, not a bool")
    if isinstance(spec, int):
        if isinstance(images, Tensor) and images.dim() == 4 and mode != "crop":
            h, w = images.shape[-2:]
            _check_range(spec, spec, h, w, mode)
        return ShiftSet.grid(spec)
    if isinstance(spec, Tensor):
        return ShiftSet(spec.detach().to(torch.float64).reshape(-1, 2), label="list")
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) == 0:
            raise ValueError("the shift set is empty; give at least one shift, e.g. shifts=1")
        return ShiftSet.from_list(spec)
    raise TypeError(f"shifts must be an int, a list of (dy, dx) pairs or a ShiftSet, got {type(spec).__name__}")
