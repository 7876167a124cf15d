"""ONNX export of converted models (``docs/onnx.md``, "Exporting a converted model"): an anti-aliased
(``convert(..., "blur")``) and an APS (``convert(..., "aps", padding="circular")``, shared phases)
ResNet-18 exported with :func:`shiftlab.export_onnx`, then measured through torch and through the
ONNX file on the same images and shifts.

Usage: python benchmarks/bench_onnx_export.py [--images 8 --size 64 --shifts 2 --threads 1]

Prints, per model: the export time, the warnings raised while exporting (none expected), max |logit
difference| torch vs onnxruntime (on the export's example batch and on a shifted batch of another
size), and consistency / clean consistency / flip rate / prediction counts through both paths. The
models have random weights; their ``fc`` is centred on the images' mean feature and scaled to logits
of standard deviation 1, so that the predictions fall in several classes (at random init nearly
every image gets one class, and any consistency would be trivial).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

import shiftlab as sl
from shiftlab.models import resnet18, spread_classifier


def measure(name: str, model: nn.Module, images: Tensor, shifts: int, folder: Path) -> None:
    model.eval()
    spread_classifier(model, model.fc, images)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = sl.export_onnx(model, images[:2], folder / f"resnet18_{name}.onnx")
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    other = torch.roll(images[:3], (5, -3), dims=(-2, -1))
    with torch.no_grad():
        other_diff = np.abs(session.run(None, {"input": other.numpy()})[0] - model(other).numpy()).max()
    print(f"{name}: export {done.seconds:.1f} s, {len(caught)} warnings, opset {done.opset}; max |logit diff| "
          f"{done.max_abs_diff:.2e} (max |logit| {done.max_abs_output:.2f}), {other_diff:.2e} on 3 shifted images")
    for path, target in (("torch", model), ("onnx ", done.path)):
        r = sl.invariance(target, images, shifts=shifts, certify=False)
        print(f"  {path}: consistency {r.consistency:.6f}, clean consistency {r.clean_consistency:.6f}, "
              f"flip rate {r.flip_rate:.6f}, top-1 prob change {r.top1_prob_change:.3e}, class counts {r.class_counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="image side (a multiple of 32 for exact APS invariance)")
    parser.add_argument("--shifts", type=int, default=2, help="circular shifts in [-m, m]^2")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.randn(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"ResNet-18 (10 classes, random weights), {args.images} images {args.size}x{args.size}, "
          f"circular shifts in [-{args.shifts}, {args.shifts}]^2, torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as folder:
        blur = sl.convert(resnet18(num_classes=10), "blur", example_input=images[:2]).model
        measure("blur", blur, images, args.shifts, Path(folder))
        aps = sl.convert(resnet18(num_classes=10), "aps", padding="circular", example_input=images[:2]).model
        measure("aps", aps, images, args.shifts, Path(folder))


if __name__ == "__main__":
    main()
