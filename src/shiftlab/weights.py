"""Load a state dict from a file into a module definition: the CLI's ``--weights`` and the
gallery's pretrained networks (``docs/gallery.md``).

The file is read with ``torch.load(..., weights_only=True)`` (tensors and plain containers only,
no code runs) and checked against the module's own state dict before anything is copied, so a
file from another version of a package fails with every missing, unexpected and mis-shaped key
named, never with a half-loaded model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

__all__ = ["load_weights"]

M = TypeVar("M", bound=nn.Module)
#: Key problems named in the error; the rest are counted.
_SHOWN = 8


def _read(path: Path) -> Mapping[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an unpickling error, a truncated zip, a file that is no torch file
        raise ValueError(f"cannot read weights from {path} ({type(error).__name__}: {error}); save them with "
                         "torch.save(model.state_dict(), path)") from error
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):  # a training checkpoint
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, Tensor)
                                                 for k, v in state.items()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict (a mapping of names to tensors)")
    return state


def load_weights(model: M, path: str | Path) -> M:
    """Copy the state dict in ``path`` into ``model`` after checking every key and shape.

    Args:
        model: the module definition; its parameters and persistent buffers are replaced.
        path: a ``torch.save`` file of a state dict, or of a training checkpoint (a dict whose
            ``"model"`` entry is the state dict, :mod:`shiftlab.training.checkpoint`).

    Returns:
        ``model``, in eval mode.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a state dict, or its keys or shapes differ from the model's
            (the message names the first 8, and counts the rest); ``model`` is then left
            unchanged.

    Example:
        >>> import tempfile, os
        >>> net = nn.Linear(2, 3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     torch.save({"weight": torch.ones(3, 2), "bias": torch.zeros(3)}, os.path.join(tmp, "w.pt"))
        ...     load_weights(net, os.path.join(tmp, "w.pt")).weight.tolist()
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    state = _read(path)
    expected = model.state_dict()
    problems = [f"missing {k} {tuple(v.shape)}" for k, v in expected.items() if k not in state]
    problems += [f"unexpected {k} {tuple(v.shape)}" for k, v in state.items() if k not in expected]
    problems += [f"{k}: file {tuple(state[k].shape)}, model {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if problems:
        shown = problems[:_SHOWN] + ([f"... {len(problems) - _SHOWN} more"] if len(problems) > _SHOWN else [])
        raise ValueError(f"the weights in {path} do not fit the model ({type(model).__name__}): " + "; ".join(shown)
                         + " (another version of the package that ships it, or weights saved from another model?)")
    model.load_state_dict(state, strict=True)
    return model.eval()
