"""shiftlab's version, read from the installed distribution's metadata: ``pyproject.toml``'s
``[project] version`` is the one place it is set."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["UNKNOWN_VERSION", "installed_version"]

#: The version reported when no package metadata can be found: shiftlab imported from a source
#: tree that was never installed (``PYTHONPATH=src``). A valid PEP 440 version that sorts below
#: every release, so no version check mistakes it for one.
UNKNOWN_VERSION = "0+unknown"


def installed_version(distribution: str = "shiftlab") -> str:
    """The version of ``distribution`` as installed (``pip install`` writes it from
    ``pyproject.toml``), or :data:`UNKNOWN_VERSION` when it is not installed.

    Example:
        >>> installed_version("no-such-distribution-here")
        '0+unknown'
    """
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN_VERSION
