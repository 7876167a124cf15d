"""A MkDocs hook (mkdocs.yml): after the build, every public name is in the API reference and every
relative link of the site reaches a file; each miss is a warning, so ``mkdocs build --strict`` fails.

MkDocs checks the links of Markdown pages, but not those in HTML it does not write itself (a
notebook's Markdown cells, rendered by nbconvert with their links as written), and mkdocstrings
leaves out, without a word, a public name that has no docstring or that griffe cannot see (a
function imported over the submodule of the same name: ``from .evaluate import evaluate``).
The reference is read from the site's ``objects.inv``.
"""

import importlib
import logging
import pkgutil
import re
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("mkdocs.hooks.site_checks")
_LINK = re.compile(r"""\b(?:href|src)=["']([^"']+)["']""")
#: Modules under ``shiftlab`` that are not Python API: the command line (its ``--help`` and the README).
NOT_API = ("cli", "__main__")


def public_modules() -> list[str]:
    """``shiftlab`` and each public module under it (not ``_private``, not :data:`NOT_API`), by name.

    A package without ``__all__`` (``shiftlab.study``) is public through its modules, one level down.
    """
    import shiftlab

    names = ["shiftlab"]
    for info in pkgutil.iter_modules(shiftlab.__path__):
        if info.name.startswith("_") or info.name in NOT_API:
            continue
        module = importlib.import_module(f"shiftlab.{info.name}")
        if hasattr(module, "__all__") or not info.ispkg:
            names.append(module.__name__)
        else:
            names += [f"{module.__name__}.{sub.name}" for sub in pkgutil.iter_modules(module.__path__)
                      if not sub.name.startswith("_")]
    return names


def undocumented(inventory: set[str]) -> list[str]:
    """``module.name`` for each name in a public module's ``__all__`` that ``inventory`` (the dotted
    names of ``objects.inv``) holds neither as that nor at its definition (``__module__.__qualname__``)."""
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            defined = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"
            if f"{module_name}.{name}" not in inventory and defined not in inventory:
                missing.append(f"{module_name}.{name}")
    return missing


def inventory_names(objects_inv: Path) -> set[str]:
    """The object names in a Sphinx inventory (``objects.inv``: four header lines, then zlib)."""
    data = objects_inv.read_bytes()
    body = data.split(b"\n", 4)[4]
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines() if line}


def broken_links(site: Path) -> list[tuple[str, str]]:
    """``(page, link)`` for each relative link of ``site``'s pages that reaches no file.

    Absolute URLs, ``mailto:``/``data:`` links and bare ``#anchors`` are not checked; a link to a
    directory reaches its ``index.html``.
    """
    broken = []
    for page in sorted(site.rglob("*.html")):
        for link in _LINK.findall(page.read_text(encoding="utf-8", errors="replace")):
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            target = (site / parts.path.lstrip("/")) if parts.path.startswith("/") else page.parent / unquote(parts.path)
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append((str(page.relative_to(site)), link))
    return broken


def on_post_build(config: Any, **kwargs: Any) -> None:
    site = Path(config["site_dir"])
    for name in undocumented(inventory_names(site / "objects.inv")):
        log.warning("the API reference leaves out the public name %s: give it a docstring (a constant: a '#:' "
                    "comment above it), or a '::: path' directive in docs/api/ if griffe cannot see it", name)
    for page, link in broken_links(site):
        log.warning("%s links to '%s', which is not in the site", page, link)
