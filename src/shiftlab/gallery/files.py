"""Find a file shipped inside an installed package without importing the package (several of
the gallery's packages import torchvision or OpenCV at import time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["package_file"]


def package_file(package: str, relative: str, *, pip_name: str | None = None) -> Path:
    """The path of ``relative`` inside the installed package ``package``.

    Args:
        package: the importable name (``"facenet_pytorch"``).
        relative: the file's path inside the package (``"data/pnet.pt"``).
        pip_name: the distribution to install when it is missing (default ``package``).

    Raises:
        ModuleNotFoundError: the package is not installed (the message gives the pip command).
        FileNotFoundError: the package is installed but lacks the file (another version).

    Example:
        >>> package_file("shiftlab", "py.typed").name
        'py.typed'
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip = pip_name or package
        raise ModuleNotFoundError(f"the package {package!r} is not installed; "
                                  f"pip install --no-deps {pip} (it ships the weights; --no-deps keeps torch as it is)")
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"{relative} is not in the installed {package} ({', '.join(spec.submodule_search_locations)}); "
                            f"install the version that ships it")
