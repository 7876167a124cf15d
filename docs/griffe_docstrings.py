"""A griffe extension that reads shiftlab's docstrings the way Sphinx/Napoleon would (mkdocs.yml).

shiftlab's docstrings are Google style with four habits griffe's Google parser does not know:

- A constant's docstring is the ``#:`` comment lines right above it (Sphinx autodoc's convention);
  griffe reads only a string literal below it. The comment becomes the docstring.

- ``Example:`` (Napoleon's alias of ``Examples:``) heads the doctests; griffe would render it as an
  admonition of Markdown, turning ``>>>`` lines into nested block quotes. It becomes ``Examples:``.
- One ``Args:`` entry for several parameters (``atol, rtol: the tolerances``); griffe would take
  ``atol, rtol`` for one unknown name. Each parameter gets its own entry with that description.
- Sphinx roles (``:func:`~shiftlab.invariance```, ``:class:`ShiftSet```, ``:math:`(N, C)```) would
  show the role's text. Each becomes inline code of the name (the last dotted part when the target starts with ``~``).

The source files are left as they are; only the rendered site changes.
"""

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^([ \t]*)Example::?[ \t]*$", re.MULTILINE)
_ARGS = re.compile(r"^([ \t]*)(?:Args|Arguments|Parameters):[ \t]*\n((?:\1[ \t]+\S.*\n|[ \t]*\n)*)", re.MULTILINE)
_GROUPED = re.compile(r"^([ \t]+)(\w+(?:, \w+)+):(.*\n(?:\1[ \t]+\S.*\n)*)", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|math|ref|doc):`(~?)([^`]+)`")


def _role_as_code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _split_grouped(section: re.Match[str]) -> str:
    entries = _GROUPED.sub(lambda m: "".join(f"{m[1]}{name}:{m[3]}" for name in m[2].split(", ")), section[2])
    return section[0][: section.start(2) - section.start(0)] + entries


def to_markdown(text: str) -> str:
    """Rewrite one docstring's ``Example:`` headings, grouped ``Args:`` entries and Sphinx roles.

    >>> to_markdown("Sum.\\n\\nExample:\\n    >>> 1\\n    1\\n\\nSee :func:`~shiftlab.invariance`.")
    'Sum.\\n\\nExamples:\\n    >>> 1\\n    1\\n\\nSee `invariance`.'
    >>> print(to_markdown("Args:\\n    x: the input.\\n    a, b: bounds,\\n        inclusive.\\n\\nReturns:\\n    a, b: no."))
    Args:
        x: the input.
        a: bounds,
            inclusive.
        b: bounds,
            inclusive.
    <BLANKLINE>
    Returns:
        a, b: no.
    """
    text = _ARGS.sub(_split_grouped, text + "\n")[:-1]  # the newline ends a last entry
    return _ROLE.sub(_role_as_code, _EXAMPLE.sub(r"\1Examples:", text))


def comment_docstring(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment lines right above line ``lineno`` (1-based) of ``lines``, as one text.

    >>> comment_docstring(["x = 0", "#: The answer,", "#: measured.", "ANSWER = 42"], 4)
    'The answer,\\nmeasured.'
    """
    above = []
    for line in reversed(lines[: lineno - 1]):
        if not line.lstrip().startswith("#:"):
            break
        above.append(line.lstrip()[2:].strip())
    return "\n".join(reversed(above)) or None


class SphinxHabits(griffe.Extension):
    """Reads ``#:`` comments as constants' docstrings and applies :func:`to_markdown` to every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None and obj.is_attribute and obj.lineno is not None and obj.parent is not None:
            text = comment_docstring(obj.parent.lines_collection[obj.filepath], obj.lineno)
            obj.docstring = None if text is None else griffe.Docstring(text, lineno=obj.lineno, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
