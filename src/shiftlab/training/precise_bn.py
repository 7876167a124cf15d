"""Precise BatchNorm statistics (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm").

BatchNorm's running averages (momentum 0.1) lag behind weights that still change quickly at the
end of a short training run; in eval mode the network then sees statistics of older weights. We
recompute them at the end of training (and of every epoch that is validated) as exact averages
over training batches, with the epoch's own augmentation, so eval mode matches the trained weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from shiftlab.measure.runner import kept_modes

__all__ = ["has_batchnorm", "recompute_batchnorm"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batchnorm(model: nn.Module) -> bool:
    """True when ``model`` holds a BatchNorm layer that tracks running statistics."""
    return any(isinstance(m, _BN) and m.track_running_stats for m in model.modules())


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: list[Tensor], transform: Callable[[Tensor], Tensor] | None = None,
                        device: torch.device | None = None) -> None:
    """Replace every BatchNorm's running mean/var by their average over ``batches`` (each
    transformed where it is, then moved to ``device`` when given).

    The model runs in train mode (batch statistics) with cumulative averaging (``momentum=None``);
    each layer's momentum and the model's mode are restored afterwards. Parameters are untouched.

    Shape:
        - each batch: ``[B, C, H, W]``
    """
    layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    momenta = [m.momentum for m in layers]
    with kept_modes(model):
        try:
            for m in layers:
                m.reset_running_stats()
                m.momentum = None
            model.train()
            for batch in batches:
                batch = transform(batch) if transform is not None else batch
                model(batch if device is None else batch.to(device))
        finally:
            for m, momentum in zip(layers, momenta, strict=True):
                m.momentum = momentum
