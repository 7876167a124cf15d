"""ONNX models (``docs/onnx.md``): how close an ONNX export measures to its torch module, and what
running it with onnxruntime costs against running the module.

Usage: python benchmarks/bench_onnx.py [--images 200 --repeats 3 --threads 1]

1. Agreement: zoo models at random init with their BatchNorm statistics spread (so that the
   predictions fall in several classes), exported with ``torch.onnx.export``, measured both
   ways on the same images: the largest absolute difference of any invariance field, the
   predictions that differ, and the largest difference of any per-layer error (absolute and
   relative), under circular and zero-filled shifts.
2. The ONNX per-layer profile of an exported zoo model, as ``shiftlab measure`` prints it.
3. Time (repeats interleaved round-robin after a warm-up, median; a ratio measured side by
   side): ``sl.invariance`` of the export against ``sl.invariance`` of the module, N images x 81
   zero-filled shifts (``maxpool_gap``, width 16, 48 x 48, as ``bench_measure.py``), and against
   bare ``session.run`` calls on the same shifted batches; ``sl.equivariance`` (every layer, 32
   images x 12 shifts) of the export against the module's.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console

import shiftlab as sl
from shiftlab.cli.tables import equivariance_table
from shiftlab.measure.driver import transform
from shiftlab.measure.shiftsets import ShiftSet

FLOAT_FIELDS = ("consistency", "clean_consistency", "top1_prob_change", "flip_rate", "accuracy", "mean_accuracy",
                "worst_case_accuracy", "mean_top1_prob")
LAYER_FIELDS = ("aligned_error", "unaligned_error", "aligned_interior_error", "unaligned_interior_error")
EQ_SHIFTS = [(0, 0), (0, 1), (1, 1), (2, 0), (4, 4), (8, 8), (0, 3), (3, 5), (-2, 1), (5, 0), (1, 7), (6, 6)]


def interleaved(candidates: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each candidate, runs interleaved round-robin."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for step in range(warmup + repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            if step >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def export(model: torch.nn.Module, path: Path, size: int) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 1, size, size),), str(path), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}})
    return path


def varied(name: str, size: int, width: int = 8, **kwargs) -> torch.nn.Module:
    """A zoo model at random init whose BatchNorm statistics spread its predictions."""
    model = sl.zoo.build(name, input_size=size, width=width, seed=0, **kwargs).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.01, 0.05, generator=g)
    return model


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def layer_pairs(onnx_res: sl.EquivarianceResult, torch_res: sl.EquivarianceResult) -> list[tuple]:
    """Each exported node's layer with the torch layer whose map it makes (``/features/features.3/MaxPool`` ->
    ``features.3``; a ``Conv`` node makes the map of the BatchNorm folded into it)."""
    layers = {layer.name: layer for layer in torch_res.layers}
    names = list(layers)
    pairs = []
    for layer in onnx_res.layers:
        path = layer.name.split("/")[2]
        i = names.index(path)
        if layer.kind == "Conv" and i + 1 < len(names) and layers[names[i + 1]].kind == "BatchNorm2d":
            path = names[i + 1]
        pairs.append((layer, layers[path]))
    return pairs


def agreement(folder: Path, n: int) -> list[str]:
    size = 24
    x, labels = images(n, size), torch.arange(n) % 10
    lines = []
    for name, kwargs in (("strided_gap", {"padding_mode": "circular"}), ("maxpool_fc", {}),
                         ("maxpool_gap", {"padding_mode": "circular"}), ("blurstrided_gap", {"padding_mode": "circular"})):
        model = varied(name, size, **kwargs)
        path = export(model, folder / f"{name}.onnx", size)
        t = sl.invariance(model, x, labels, shifts=2, keep_predictions=True)
        o = sl.invariance(path, x, labels, shifts=2, keep_predictions=True)
        inv_diff = max(abs(getattr(t, f) - getattr(o, f)) for f in FLOAT_FIELDS if getattr(t, f) is not None)
        differ = int((t.predictions != o.predictions).sum())
        worst_abs = worst_rel = 0.0
        for mode in ("circular", "zeros"):
            te, oe = sl.equivariance(model, x[:16], shifts=2, mode=mode), sl.equivariance(path, x[:16], shifts=2, mode=mode)
            for a, b in layer_pairs(oe, te):
                for f in LAYER_FIELDS:
                    u, v = getattr(a, f), getattr(b, f)
                    if u is not None and v is not None:
                        worst_abs = max(worst_abs, abs(u - v))
                        worst_rel = max(worst_rel, abs(u - v) / max(abs(v), 1e-12))
        lines.append(f"{name:16s} consistency {t.consistency:.4f}  invariance fields max |diff| {inv_diff:.2e}  "
                     f"predictions differing {differ}/{t.predictions.numel()}  per-layer errors max |diff| "
                     f"{worst_abs:.2e} (relative {worst_rel:.2e})")
    return lines


def profile(folder: Path) -> sl.EquivarianceResult:
    model = varied("maxpool_fc", 28)
    return sl.equivariance(export(model, folder / "profile.onnx", 28), images(16, 28), shifts=2, mode="zeros")


def timing(folder: Path, n: int, repeats: int) -> list[str]:
    import onnxruntime

    model = sl.zoo.build("maxpool_gap", num_classes=10, in_channels=1, width=16, input_size=48, seed=0).eval()
    path = export(model, folder / "maxpool_gap.onnx", 48)
    x, labels = images(n, 48), torch.arange(n) % 10
    shifts = ShiftSet.grid(4)
    n_img = min(n, 256)
    batches = [transform(x[i0:i0 + n_img], shifts.offsets[s0:s0 + max(1, 256 // n_img)], "zeros", None)
               .flatten(0, 1).numpy() for i0 in range(0, n, n_img) for s0 in range(0, len(shifts), max(1, 256 // n_img))]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)  # bench_measure.py's torch layout
    t = interleaved({
        "torch": lambda: sl.invariance(model, x, labels, shifts=shifts, mode="zeros", batch_size=256, certify=False),
        "torch channels_last": lambda: sl.invariance(fast, x, labels, shifts=shifts, mode="zeros", batch_size=256,
                                                     certify=False),
        "onnx": lambda: sl.invariance(path, x, labels, shifts=shifts, mode="zeros", batch_size=256),
        "bare onnxruntime": lambda: [session.run(None, {"input": b}) for b in batches],
    }, repeats)
    lines = [f"invariance, {n} images x 81 shifts (maxpool_gap, width 16, 48x48, zeros): torch module {t['torch']:.2f} s "
             f"({t['torch channels_last']:.2f} s channels_last), ONNX {t['onnx']:.2f} s (ratio {t['onnx'] / t['torch']:.2f}; "
             f"{t['onnx'] / t['torch channels_last']:.2f} against channels_last), bare session.run on the same batches "
             f"{t['bare onnxruntime']:.2f} s (shiftlab's overhead {t['onnx'] / t['bare onnxruntime']:.2f})"]
    xe, eq_shifts = images(32, 48), ShiftSet.from_list(EQ_SHIFTS)
    t = interleaved({
        "torch": lambda: sl.equivariance(model, xe, shifts=eq_shifts, batch_size=256),
        "onnx": lambda: sl.equivariance(path, xe, shifts=eq_shifts, batch_size=256),
    }, repeats)
    lines.append(f"equivariance, 32 images x 12 shifts, every layer: torch module {t['torch']:.2f} s, ONNX "
                 f"{t['onnx']:.2f} s (ratio {t['onnx'] / t['torch']:.2f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images of the invariance timing (default 200)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime

    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, torch "
          f"{torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for line in agreement(folder, 32):
            print(line, flush=True)
        Console(width=150).print(equivariance_table(profile(folder), 1e-4))
        for line in timing(folder, args.images, args.repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()
