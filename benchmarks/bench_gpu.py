"""shiftlab on a GPU: measuring against the bare forward passes, and training throughput.

Usage: python benchmarks/bench_gpu.py [--device cuda --images 4000 --repeats 3]

Run by ``benchmarks/gpu.sh`` (which also runs the CUDA tests and a quick study on the GPU).
``--device cpu`` runs the same table on the CPU (how the script is tested where no GPU is).
Every time is taken after ``torch.cuda.synchronize()``, repeats interleaved round-robin after a
warm-up (median), so the ratios are side by side:

1. ``sl.invariance`` on ``maxpool_gap`` (width 16, 48x48, zero-filled, 81 shifts) over
   ``--images`` images against bare ``model(batch)`` calls on the same pre-built shifted batches
   (batch 1024);
2. ``sl.equivariance`` (every layer, 12 shifts, 256 images or ``--images`` if fewer) against the bare passes it needs
   (``x`` and each ``T_d x``);
3. training throughput (images/s) of five zoo models (``--train-models``), AdamW, channels-last, at batch 64 (the
   study's) and 256.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_measure import EQ_SHIFTS, bare_batches, images, interleaved, run_bare, zoo  # noqa: E402

import shiftlab as sl  # noqa: E402
from shiftlab.measure.driver import transform  # noqa: E402
from shiftlab.measure.shiftsets import ShiftSet  # noqa: E402

TRAIN_MODELS = ("maxpool_gap", "strided_gap", "allconv_gap", "blurstrided_gap", "aps_gap")


def timed(candidates: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Median seconds of each candidate, each run ending with ``torch.cuda.synchronize`` (so its
    time holds its GPU work, and nothing of it is pending when the next starts), interleaved
    round-robin after one warm-up round (:func:`bench_measure.interleaved`)."""
    def synced(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return run

    return interleaved({name: synced(fn) for name, fn in candidates.items()}, repeats)


def measuring_rows(device: torch.device, n: int, repeats: int) -> list[tuple[str, float, float]]:
    """(what, bare seconds, shiftlab seconds) of invariance and of the per-layer profile."""
    model = zoo("maxpool_gap", 48).to(device)
    x, labels = images(n, 48).to(device), (torch.arange(n) % 10).to(device)
    grid = ShiftSet.grid(4)
    batches = bare_batches(x, grid, "zeros", 1024)
    t = timed({"bare": lambda: run_bare(model, batches),
               "shiftlab": lambda: sl.invariance(model, x, labels, shifts=grid, mode="zeros", batch_size=1024,
                                                 certify=False)}, device, repeats)
    rows = [(f"invariance, {n} images x 81 shifts, maxpool_gap 48x48", t["bare"], t["shiftlab"])]
    m = min(n, 256)
    x = images(m, 48).to(device)
    shifts = ShiftSet.from_list(EQ_SHIFTS)
    needed = [x] + [transform(x, shifts.offsets[i:i + 1], "circular", None)[0] for i in range(len(shifts))]
    batches = [torch.cat(needed[i:i + 4]) for i in range(0, len(needed), 4)]
    t = timed({"bare": lambda: run_bare(model, batches),
               "shiftlab": lambda: sl.equivariance(model, x, shifts=shifts, batch_size=1024)}, device, repeats)
    rows.append((f"equivariance, every layer, {m} images x 12 shifts, maxpool_gap 48x48", t["bare"], t["shiftlab"]))
    return rows


def training_rate(name: str, batch: int, device: torch.device, steps: int, repeats: int) -> float:
    """Images/s of AdamW steps on zoo model ``name`` (random images, 10 classes)."""
    model = zoo(name, 48).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = images(batch, 48).to(device).contiguous(memory_format=torch.channels_last)
    y = (torch.arange(batch) % 10).to(device)

    def run() -> None:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return batch * steps / timed({"train": run}, device, repeats)["train"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--images", type=int, default=4000, help="images of the invariance row (default 4000)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-models", default=",".join(TRAIN_MODELS), help="zoo models of the training table")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu, or on a machine with a GPU", file=sys.stderr)
        return 3
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; median of {args.repeats} interleaved repeats")
    print(f"{'measurement':<72} {'bare s':>8} {'shiftlab s':>10} {'ratio':>6}")
    for what, t_bare, t_ours in measuring_rows(device, args.images, args.repeats):
        print(f"{what:<72} {t_bare:8.3f} {t_ours:10.3f} {t_ours / t_bare:6.2f}", flush=True)
    print(f"\n{'training, AdamW, 48x48, width 16':<40} {'batch 64 img/s':>15} {'batch 256 img/s':>16}")
    for model_name in args.train_models.split(","):
        rates = [training_rate(model_name, b, device, args.steps, args.repeats) for b in (64, 256)]
        print(f"{model_name:<40} {rates[0]:15.0f} {rates[1]:16.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
