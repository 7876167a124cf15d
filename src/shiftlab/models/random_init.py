"""Random weights that say something: measuring an architecture before anyone trains it.

At torchvision's initialisation a network's BatchNorm layers are the identity (running mean 0,
variance 1, weight 1, bias 0) and its classifier's logits are nearly equal, so nearly every image
gets the same class with a near-flat softmax: top-1 consistency is then 1.0 for any
architecture and measures nothing (``docs/gallery.md``, "ResNet-18 at ImageNet scale"). These
two functions move a random model away from that degenerate point without training it; both
change ``model`` in place and return it.

- :func:`randomise_norms`: every ``BatchNorm2d``'s statistics and affine parameters drawn away
  from the identity (so a comparison of two implementations exercises them, e.g. against
  ``antialiased_cnns``).
- :func:`spread_classifier`: the final ``nn.Linear`` centred on the mean feature of some images
  and scaled so their logits have standard deviation 1 (so the classes spread over the images).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["randomise_norms", "spread_classifier"]


def randomise_norms(model: nn.Module) -> nn.Module:
    """Draw every ``BatchNorm2d`` of ``model`` away from the identity, from torch's global RNG:
    running mean ~ U(-0.5, 0.5), running variance ~ U(0.5, 2), weight ~ U(0.5, 1.5), bias ~
    U(-0.2, 0.2). Returns ``model`` (changed in place)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                if m.running_mean is not None and m.running_var is not None:
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def spread_classifier(model: nn.Module, classifier: nn.Linear, images: Tensor) -> nn.Module:
    """Centre ``classifier`` (the last layer of ``model``) on the mean of its input features over
    ``images`` ``[N, C, H, W]`` and scale it so the centred logits have standard deviation 1.

    Runs ``model`` once on ``images`` (no gradients; put it in eval mode first if that is the
    mode it will be measured in). Returns ``model`` (``classifier`` changed in place).
    """
    if len(images) < 2:
        raise ValueError(f"spread_classifier needs at least 2 images to centre on, got {len(images)}")
    features: list[Tensor] = []
    hook = classifier.register_forward_pre_hook(lambda _, args: features.append(args[0]))
    try:
        with torch.no_grad():
            model(images)
    finally:
        hook.remove()
    with torch.no_grad():
        feats = features[0].flatten(1)
        mean = feats.mean(0)
        classifier.weight *= 1 / ((feats - mean) @ classifier.weight.T).std()
        if classifier.bias is not None:
            classifier.bias.copy_(-classifier.weight @ mean)
    return model
