"""Load a user's model from ``path/to/file.py:factory`` and optional weights, or check an ONNX file."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from shiftlab.measure.onnx_graph import OnnxGraph

__all__ = ["UserCodeError", "load_factory_model", "load_onnx_model"]

_MODEL_FORMS = ("path/to/file.py:factory, an ONNX file model.onnx or a study checkpoint "
                "RUN_DIR/checkpoints/MODEL__CONDITION__seedN")


class UserCodeError(ValueError):
    """The user's model file raised while it was imported or while its factory ran.

    The message names the file, the factory, the exception and the line of the user's file it
    came from; ``__cause__`` is the original exception (``shiftlab --debug`` shows its traceback).
    """


def _where(err: BaseException, path: Path) -> str:
    """`` (line N of file.py)`` for the deepest frame of ``err``'s traceback in ``path``, or ``""``."""
    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    return f" (line {lines[-1]} of {path.name})" if lines else ""


def _raised(what: str, err: Exception, path: Path) -> UserCodeError:
    return UserCodeError(f"{what} raised {type(err).__name__}: {err}{_where(err, path)}; "
                         "fix the model file (add --debug to see the traceback)")


def _missing_target(target: str) -> FileNotFoundError:
    """The error for a MODEL that is neither an existing file.py:factory nor a study checkpoint."""
    path = Path(target)
    hint = ""
    if path.parent.name == "checkpoints" and path.parent.is_dir():  # a run directory, a wrong key
        keys = sorted(p.name for p in path.parent.iterdir() if p.is_dir())
        shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        hint = f"; {path.parent} holds: {shown}" if keys else f"; {path.parent} holds no checkpoints yet"
    elif not path.parent.exists() and str(path.parent) not in ("", "."):
        hint = f" (nor does {path.parent})"
    return FileNotFoundError(f"MODEL {target} does not exist{hint}; give {_MODEL_FORMS}")


def load_factory_model(target: str) -> nn.Module:
    """Import ``file.py`` and call ``factory()``; the result must be an ``nn.Module``.

    ``target`` is ``path/to/file.py:factory``. Raises :class:`UserCodeError` when importing the
    file or calling the factory raises, naming both.
    """
    path_str, sep, factory_name = target.rpartition(":")
    if not sep or not path_str or not factory_name:
        if not Path(target).exists():
            raise _missing_target(target)
        raise ValueError(f"expected MODEL as {_MODEL_FORMS}, got {target!r}"
                         + (f"; add the factory's name: {target}:NAME" if target.endswith(".py") else ""))
    path = Path(path_str)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist; give MODEL as {_MODEL_FORMS}")
    spec = importlib.util.spec_from_file_location(f"shiftlab_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(spec.name, None)
        raise _raised(f"importing the model file {path}", err, path) from err
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        available = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise ValueError(f"{path} has no callable {factory_name!r}; callables there: {available}")
    try:
        model = factory()
    except Exception as err:
        raise _raised(f"the factory {target}", err, path) from err
    if not isinstance(model, nn.Module):
        raise TypeError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_onnx_model(target: str) -> OnnxGraph:
    """Check the ONNX file ``target`` (exists, a valid model, one image input ``[N, C, H, W]``) and
    return its graph; the file is only read."""
    from shiftlab.measure.onnx_graph import load_model, read_graph

    return read_graph(load_model(target))
