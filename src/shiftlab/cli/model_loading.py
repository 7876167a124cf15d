"""Load a user's model for ``shiftlab measure``: ``path/to/file.py:factory``, an importable
``module.path:callable``, a registered name (:data:`shiftlab.models.MODELS`), or check an ONNX file.

A target whose part before the last ``:`` is an existing file, or ends in ``.py``, is a file;
otherwise that part is a module path. A file's folder is first on ``sys.path`` while it is
imported and its factory runs (so it can import a module beside it); afterwards ``sys.path`` is
as before and the modules loaded from that folder are taken out of ``sys.modules`` again. A
module path is imported as Python would, with the current directory on ``sys.path`` for the
import (as ``uvicorn module:app`` does); the modules it imports stay imported.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from torch import nn

from shiftlab.models import MODELS

if TYPE_CHECKING:
    from shiftlab.measure.onnx_graph import OnnxGraph

__all__ = ["UserCodeError", "load_model", "load_onnx_model"]

_MODEL_FORMS = ("path/to/file.py:factory, module.path:callable, a registered model name, an ONNX file "
               "model.onnx or a study checkpoint RUN_DIR/checkpoints/MODEL__CONDITION__seedN")


#: The name a model file's module gets in ``sys.modules`` while it loads: this and its stem.
_USER_PREFIX = "shiftlab_user_"


class UserCodeError(ValueError):
    """The user's model file or module raised while it was imported or while its factory ran.

    The message names the file or module, the factory, the exception and the line of the user's
    file it came from; ``__cause__`` is the original exception (``shiftlab --debug`` shows its
    traceback).
    """


def _where(err: BaseException, path: Path | None) -> str:
    """`` (line N of file.py)`` for the deepest frame of ``err``'s traceback in ``path``, or ``""``."""
    if path is None:
        return ""
    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    return f" (line {lines[-1]} of {path.name})" if lines else ""


def _raised(what: str, err: Exception, path: Path | None, fix: str = "fix the model file") -> UserCodeError:
    return UserCodeError(f"{what} raised {type(err).__name__}: {err}{_where(err, path)}; "
                         f"{fix} (add --debug to see the traceback)")


def _missing_target(target: str) -> FileNotFoundError:
    """The error for a MODEL that is no file, module spec, registered name or study checkpoint."""
    path = Path(target)
    hint = ""
    if path.parent.name == "checkpoints" and path.parent.is_dir():  # a run directory, a wrong key
        keys = sorted(p.name for p in path.parent.iterdir() if p.is_dir())
        shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
        hint = f"; {path.parent} holds: {shown}" if keys else f"; {path.parent} holds no checkpoints yet"
    elif not path.parent.exists() and str(path.parent) not in ("", "."):
        hint = f" (nor does {path.parent})"
    elif str(path.parent) in ("", ".") and path.suffix != ".py":  # a bare word: maybe a misspelt model name
        names = sorted(MODELS)
        close = difflib.get_close_matches(target, names, n=1)
        hint = (" as a file, and it is no registered model" + (f" (did you mean {close[0]}?)" if close else "")
                + f"; registered: {', '.join(names)}")
    return FileNotFoundError(f"MODEL {target} does not exist{hint}; give {_MODEL_FORMS}")


def _is_file_target(source: str) -> bool:
    """Whether ``source`` (the part of MODEL before ``:``) names a file rather than a module."""
    return source.endswith(".py") or Path(source).is_file()


def load_model(target: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build the model ``target`` names, calling its factory with ``kwargs``.

    ``target`` is ``path/to/file.py:factory``, ``module.path:callable`` (a function or class
    returning an ``nn.Module``) or a name in :data:`shiftlab.models.MODELS`.

    Raises:
        FileNotFoundError: no such file, and no registered model of that name.
        ModuleNotFoundError: no importable module and no file of that name.
        UserCodeError: importing the file or module, or calling the factory, raised.
        ValueError: no such factory there, or it is not callable.
        TypeError: the factory returned something that is not an ``nn.Module``.
    """
    source, sep, name = target.rpartition(":")
    if not sep:
        if target in MODELS and not Path(target).exists():
            return _build(MODELS[target], target, kwargs or {}, None)
        if not Path(target).exists():
            raise _missing_target(target)
        raise ValueError(f"expected MODEL as {_MODEL_FORMS}, got {target!r}"
                         + (f"; add the factory's name: {target}:NAME" if target.endswith(".py") else ""))
    if not source or not name:
        raise ValueError(f"expected MODEL as {_MODEL_FORMS}, got {target!r}")
    if _is_file_target(source):
        return _load_from_file(Path(source), name, target, kwargs or {})
    return _load_from_module(source, name, target, kwargs or {})


def _load_from_file(path: Path, name: str, target: str, kwargs: dict[str, Any]) -> nn.Module:
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist; give MODEL as {_MODEL_FORMS}")
    with _on_path(path.resolve().parent, forget_modules=True):
        module = _import_file(path)
        return _build(_factory(module, name, str(path)), target, kwargs, path)


def _import_file(path: Path) -> ModuleType:
    name = f"{_USER_PREFIX}{path.stem}"
    loader = SourceFileLoader(name, str(path))  # Python source whatever the file's suffix
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None  # a loader is given
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the like look their module up while it runs
    try:
        loader.exec_module(module)
    except Exception as err:
        raise _raised(f"importing the model file {path}", err, path) from err
    return module


def _load_from_module(source: str, name: str, target: str, kwargs: dict[str, Any]) -> nn.Module:
    with _on_path(Path.cwd(), forget_modules=False):
        try:
            module = importlib.import_module(source)
        except ModuleNotFoundError as err:
            if err.name is not None and (source == err.name or source.startswith(err.name + ".")):
                raise ModuleNotFoundError(
                    f"MODEL {target}: no module {source} can be imported (No module named {err.name!r}), and no file "
                    f"{source} exists either; give {_MODEL_FORMS}") from err
            raise _raised(f"importing the module {source}", err, None, "install what it needs") from err
        except Exception as err:
            raise _raised(f"importing the module {source}", err, None,
                          f"check that python -c 'import {source}' works") from err
        return _build(_factory(module, name, f"module {source}"), target, kwargs, None)


@contextmanager
def _on_path(folder: Path, *, forget_modules: bool) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the block; with ``forget_modules``, the modules the
    block imported through that entry (``folder/NAME.py``, ``folder/NAME/...``) and the model
    file's own module are taken out of ``sys.modules`` afterwards."""
    entry, before = str(folder), set(sys.modules)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)  # the first occurrence: the one inserted above
        if forget_modules:
            for key in set(sys.modules) - before:
                if key.startswith(_USER_PREFIX) or _imported_from(folder, key, sys.modules[key]):
                    del sys.modules[key]


def _imported_from(folder: Path, key: str, module: ModuleType) -> bool:
    """Whether module ``key`` was found in ``folder`` itself (not in a package further down, such
    as ``folder/src/shiftlab`` when the model file lies in a repository's root)."""
    file = getattr(module, "__file__", None)
    if not file or not Path(file).resolve().is_relative_to(folder):
        return False
    top = Path(file).resolve().relative_to(folder).parts[0]
    return top in (key.split(".")[0], key.split(".")[0] + ".py")


def _factory(module: ModuleType, name: str, where: str) -> Callable[..., Any]:
    """``module``'s attribute ``name`` (dotted names go into classes and submodules), callable."""
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            available = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
            raise ValueError(f"{where} has no callable {name!r}; callables there: {available}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{name!r} in {where} is not callable (its type: {type(obj).__name__}); name a function or "
                         "class that returns a torch.nn.Module")
    return obj


def _build(factory: Callable[..., Any], target: str, kwargs: dict[str, Any], path: Path | None) -> nn.Module:
    """``factory(**kwargs)``, which must be an ``nn.Module``; ``path``: the user's file, if any."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and some C extensions have none: the call will tell
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as err:
            given = "--model-kwargs " + json.dumps(kwargs) if kwargs else "no arguments"
            raise ValueError(f"{target} cannot be called with {given} ({err}); its parameters: {signature}; "
                             "give them with --model-kwargs JSON") from err
    try:
        model = factory(**kwargs)
    except Exception as err:
        raise _raised(f"the factory {target}", err, path, "fix the model file" if path else "check its arguments") from err
    if not isinstance(model, nn.Module):
        raise TypeError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_onnx_model(target: str) -> OnnxGraph:
    """Check the ONNX file ``target`` (exists, a valid model, one image input ``[N, C, H, W]``) and
    return its graph; the file is only read."""
    from shiftlab.measure.onnx_graph import load_model as load_onnx
    from shiftlab.measure.onnx_graph import read_graph

    return read_graph(load_onnx(target))
