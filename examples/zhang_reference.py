"""Print max |logit difference| between shiftlab's Zhang conversion and antialiased_cnns' models.

    python examples/zhang_reference.py      # needs: pip install antialiased-cnns

For ResNet-18 (also with ``blur_stem=True`` against ``pool_only=False``), ResNet-50, MobileNetV2
and VGG-16-BN: the reference model at random init (``filter_size=4``, BatchNorm statistics and
affine parameters drawn away from the identity), its state dict loaded into
``convert(shiftlab.models.<name>(), "blur")`` by ``load_antialiased_state_dict``, both in eval
mode on one seeded float32 batch ``[2, 3, 64, 64]``. VGG's ``AdaptiveAvgPool2d((7, 7))``
upsamples its 2 x 2 map at this size and is skipped (convert leaves a non-global adaptive pool
alone only where it is the identity, e.g. at 224 x 224).
"""

from typing import Any

import antialiased_cnns
import torch

from shiftlab import convert, models
from shiftlab.conversion import load_antialiased_state_dict
from shiftlab.models import randomise_norms

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("resnet18", {}, {}),
    ("resnet18", {"pool_only": False}, {"blur_stem": True}),
    ("resnet50", {}, {}),
    ("mobilenet_v2", {}, {}),
    ("vgg16_bn", {}, {"skip": ["avgpool"]}),
]


def main() -> None:
    for name, ref_kwargs, options in CASES:
        torch.manual_seed(0)
        ref = randomise_norms(getattr(antialiased_cnns, name)(filter_size=4, **ref_kwargs)).eval()
        x = torch.randn(2, 3, 64, 64)
        ours, _ = convert(models.MODELS[name]().eval(), "blur", example_input=x, **options)
        load_antialiased_state_dict(ours, ref.state_dict())
        with torch.no_grad():
            a, b = ours(x), ref(x)
        label = name + (" blur_stem=True" if options.get("blur_stem") else "")
        print(f"{label:<24} max |diff| {(a - b).abs().max().item():.3g}   "
              f"(max |logit| {b.abs().max().item():.3g})")


if __name__ == "__main__":
    main()
