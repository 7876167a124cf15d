"""How numbers are written in the report and the verdict: values with their intervals, signed
differences with their confidence intervals (``docs/definitions.md``, "Intervals")."""

from __future__ import annotations

import html

from shiftlab.stats import Interval

__all__ = ["esc", "fmt", "fmt_count", "fmt_diff", "fmt_error", "fmt_int", "fmt_interval", "fmt_seconds"]


def fmt(value: float | None, digits: int = 3) -> str:
    """A proportion (consistency, agreement, accuracy).

    Example:
        >>> fmt(0.31234), fmt(None)
        ('0.312', 'n/a')
    """
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_count(n: int, noun: str) -> str:
    """A count with its noun, plural unless it is one (a regular plural: ``noun + "s"``).

    Example:
        >>> fmt_count(1, "epoch"), fmt_count(8, "epoch")
        ('1 epoch', '8 epochs')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_interval(iv: Interval | None, digits: int = 3, margin: float | None = None, reference: float = 0.0) -> str:
    """A value with its interval, the interval to one digit less.

    With the ``margin`` the interval was decided against, as a difference from ``reference`` (e.g.
    chance), the bounds get the digits that show their side of ``reference`` and of
    ``reference ± margin`` (:func:`fmt_diff`).

    Example:
        >>> fmt_interval(Interval(0.3123, 0.2912, 0.3333))
        '0.312 [0.29, 0.33]'
        >>> fmt_interval(Interval(0.55, 0.519, 0.58), margin=0.02, reference=0.5)
        '0.550 [0.519, 0.580]'
    """
    if iv is None:
        return "n/a"
    d = max(digits - 1, 1)
    if margin is not None:
        d = _separating_digits((iv.low - reference, iv.high - reference), margin, d)
    return f"{iv.estimate:.{max(digits, d)}f} [{iv.low:.{d}f}, {iv.high:.{d}f}]"


def fmt_diff(iv: Interval, digits: int = 2, margin: float | None = None, *, short: bool = False) -> str:
    """A signed difference with its confidence interval (``short``: without the "95% CI" words, for
    the answer's opening lines, which say once that every interval is a 95% one).

    With the ``margin`` the interval was decided against (``docs/definitions.md``, "Intervals"),
    the bounds get as many more digits (up to 6) as it takes for none to read as ``±margin`` or
    as 0 when it is not: an upper bound of -0.0199 printed as -0.02 would contradict its "less,
    size unresolved", a lower bound of 0.004 printed as +0.00 its "more, size unresolved".

    Example:
        >>> fmt_diff(Interval(0.1, 0.07, 0.13))
        '+0.10 [95% CI +0.07, +0.13]'
        >>> fmt_diff(Interval(0.1, 0.07, 0.13), margin=0.02), fmt_diff(Interval(0.1, 0.07, 0.13), short=True)
        ('+0.10 [95% CI +0.07, +0.13]', '+0.10 [+0.07, +0.13]')
        >>> fmt_diff(Interval(-0.04, -0.06, -0.0199), margin=0.02), fmt_diff(Interval(-0.04, -0.06, -0.0201), margin=0.02)
        ('-0.0400 [95% CI -0.0600, -0.0199]', '-0.0400 [95% CI -0.0600, -0.0201]')
        >>> fmt_diff(Interval(-0.037, -0.054, -0.019), margin=0.02), fmt_diff(Interval(0.03, 0.004, 0.05), margin=0.02)
        ('-0.037 [95% CI -0.054, -0.019]', '+0.030 [95% CI +0.004, +0.050]')
    """
    if margin is not None:
        digits = _separating_digits((iv.low, iv.high), margin, digits)
    level = "" if short else f"{round(100 * iv.level):d}% CI "
    return f"{iv.estimate:+.{digits}f} [{level}{iv.low:+.{digits}f}, {iv.high:+.{digits}f}]"


def _separating_digits(bounds: tuple[float, ...], margin: float, digits: int, most: int = 6) -> int:
    """The fewest digits (at least ``digits``, at most ``most``) at which no bound that differs
    from ``±margin`` or 0 is printed as its rounding (the outcome turns on which side of each it is)."""
    for d in range(digits, most):
        edges = (round(margin, d), round(-margin, d), 0.0)
        if all(round(b, d) not in edges or b in (margin, -margin, 0.0) for b in bounds):
            return d
    return most


def fmt_error(value: float | None) -> str:
    """A relative L2 equivariance error.

    Example:
        >>> fmt_error(0.0), fmt_error(0.01234), fmt_error(None)
        ('0', '1.2e-02', 'n/a')
    """
    if value is None:
        return "n/a"
    return "0" if value == 0 else f"{value:.1e}"


def fmt_int(value: float | None) -> str:
    """A count with thousands separators.

    Example:
        >>> fmt_int(17530.0)
        '17,530'
    """
    return "n/a" if value is None else f"{round(value):,}"


def fmt_seconds(seconds: float | None) -> str:
    """A duration.

    Example:
        >>> fmt_seconds(42.0), fmt_seconds(900.0), fmt_seconds(9000.0)
        ('42.0 s', '15.0 min', '2.50 h')
    """
    if seconds is None:
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)
