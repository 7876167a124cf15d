"""Progress events that :func:`train` sends to an optional callback instead of printing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ProgressEvent:
    """One training step finished (``kind="step"``) or one epoch finished and was checkpointed (``"epoch"``).

    Attributes:
        kind: ``"step"`` after each optimisation step, ``"epoch"`` after each epoch (and after
            its checkpoint, if any, was written).
        epoch: 1-based epoch number.
        epochs: total epochs of the run (``config.epochs``).
        step: 1-based steps done in this epoch (equals ``steps`` for ``"epoch"`` events).
        steps: optimisation steps per epoch.
        loss: the batch loss for ``"step"``, the epoch's mean training loss for ``"epoch"``.
        record: for ``"epoch"`` events the epoch's history row, else ``None``.

    Example (driving a ``rich`` progress bar; the total over a resumed run is
    ``(epochs - epoch + 1) * steps`` at the first event)::

        def on_progress(event: ProgressEvent) -> None:
            if event.kind == "step":
                bar.update(task, advance=1, description=f"epoch {event.epoch} loss {event.loss:.3f}")
    """

    kind: Literal["step", "epoch"]
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    record: dict | None = None


#: What ``train(..., progress=)`` calls with each :class:`ProgressEvent`.
ProgressCallback = Callable[[ProgressEvent], None]
