"""The cost of measuring, against the forward passes it cannot avoid.

Usage: python benchmarks/bench_measure.py [--images 1000 --repeats 3 --threads 1]

Four measurements, each a ratio timed side by side in one run (repeats interleaved round-robin
after a warm-up, median over repeats; these machines are noisy, absolute times mean little):

1. ``sl.invariance`` on a study zoo model (``maxpool_gap``, width 16, 48x48 canvases, zero-filled
   shifts) over N images x 81 shifts, against bare ``model(batch)`` calls on the same pre-built
   shifted batches of the same size (target <= 1.15);
2. ``sl.equivariance`` (every layer, 12 shifts) against the bare passes it needs, ``x`` and each
   ``T_d x``: on ``maxpool_gap`` 48x48 (target <= 1.5) and on ``strided_fc`` 32x32, whose cheap
   convolutions leave the comparison dominant (target <= 3); the time split of its runs (forward
   passes, band-limited shifts, comparison); and its peak memory against one forward pass of the
   same batch (target <= 1.5; CPU: peak RSS above a process that built the same model and data,
   each in its own process);
3. the certified full circular profile (``certify=True``, one pass per residue modulo the total
   stride) against the naive one (a pass per shift): identical numbers, speed-up against the
   bound ``(H x W) / (S_y x S_x)`` (target: at least half of it);
4. cost growth: seconds per image-shift as the number of shifts, images and the image side grow.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

import shiftlab as sl
from shiftlab.measure import layer_errors
from shiftlab.measure.driver import transform
from shiftlab.measure.layer_records import LayerAccumulator
from shiftlab.measure.shiftsets import ShiftSet


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


def zoo(name: str, size: int, width: int = 16, padding: str = "zeros") -> torch.nn.Module:
    model = sl.zoo.build(name, num_classes=10, in_channels=1, width=width, input_size=size, padding_mode=padding, seed=0)
    return model.to(memory_format=torch.channels_last).eval()


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def bare_batches(x: torch.Tensor, shift_set: ShiftSet, mode: str, batch_size: int) -> list[torch.Tensor]:
    """The shifted batches a measurement runs, built once (so only the forward passes are timed)."""
    n_img = min(x.shape[0], batch_size)
    n_shift = max(1, batch_size // n_img)
    out = []
    for i0 in range(0, x.shape[0], n_img):
        for s0 in range(0, len(shift_set), n_shift):
            out.append(transform(x[i0:i0 + n_img], shift_set.offsets[s0:s0 + n_shift], mode, None).flatten(0, 1))
    return out


def run_bare(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    with torch.inference_mode():
        for b in batches:
            model(b)


def bench_invariance(n: int, repeats: int) -> tuple[str, float]:
    model, x, labels = zoo("maxpool_gap", 48), images(n, 48), torch.arange(n) % 10
    shifts = ShiftSet.grid(4)  # 81 shifts, (0, 0) among them: no separate clean pass
    batches = bare_batches(x, shifts, "zeros", 256)
    t = interleaved({
        "bare": lambda: run_bare(model, batches),
        "invariance": lambda: sl.invariance(model, x, labels, shifts=shifts, mode="zeros", batch_size=256, certify=False),
    }, repeats)
    ratio = t["invariance"] / t["bare"]
    return (f"invariance, {n} images x 81 shifts (maxpool_gap, 48x48, zeros)  bare {t['bare']:.2f} s  "
            f"shiftlab {t['invariance']:.2f} s  ratio {ratio:.3f}  (target <= 1.15)"), ratio


EQ_SHIFTS = [(0, 0), (0, 1), (1, 1), (2, 0), (4, 4), (8, 8), (0, 3), (3, 5), (-2, 1), (5, 0), (1, 7), (6, 6)]


#: The per-layer benchmark's models: (zoo name, input side, target ratio). ``maxpool_gap`` is the
#: README's model; ``strided_fc`` has cheap (strided) convolutions, so the comparison dominates.
EQ_MODELS = (("maxpool_gap", 48, 1.5), ("strided_fc", 32, 3.0))


def equivariance_split(model: torch.nn.Module, x: torch.Tensor, shifts: ShiftSet, repeats: int) -> dict[str, float]:
    """Median seconds of one ``sl.equivariance`` run split into ``shift`` (the band-limited
    sources of fractional shifts, :func:`shiftlab.measure.layer_errors._source_map`), ``compare``
    (the rest of the layers' hooks: differences and sums) and ``forward`` (everything else: the
    forward passes, shifting the inputs, the result), timed by wrapping the two functions."""
    spent = {"shift": 0.0, "compare": 0.0}

    def timed(fn: Callable[..., object], key: str) -> Callable[..., object]:
        def wrapper(*args: object) -> object:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[key] += time.perf_counter() - start
        return wrapper

    add, source_map = LayerAccumulator.add, layer_errors._source_map
    runs: dict[str, list[float]] = {"total": [], "shift": [], "compare": []}
    try:
        LayerAccumulator.add = timed(add, "compare")  # type: ignore[method-assign]
        layer_errors._source_map = timed(source_map, "shift")  # type: ignore[assignment]
        for _ in range(repeats):
            spent.update(shift=0.0, compare=0.0)
            start = time.perf_counter()
            sl.equivariance(model, x, shifts=shifts, batch_size=256)
            runs["total"].append(time.perf_counter() - start)
            runs["shift"].append(spent["shift"])
            runs["compare"].append(spent["compare"] - spent["shift"])
    finally:
        LayerAccumulator.add, layer_errors._source_map = add, source_map  # type: ignore[method-assign]
    med = {key: statistics.median(values) for key, values in runs.items()}
    return {"forward": med["total"] - med["shift"] - med["compare"], "shift": med["shift"], "compare": med["compare"]}


def equivariance_row(name: str, size: int, target: float, repeats: int) -> tuple[str, float]:
    """``sl.equivariance`` of one zoo model (every layer, 12 shifts, 32 images) against the bare
    passes it needs, and the time split of its runs: the lines and the ratio."""
    model, x = zoo(name, size), images(32, size)
    shifts = ShiftSet.from_list(EQ_SHIFTS)
    needed = [x] + [transform(x, shifts.offsets[i:i + 1], "circular", None)[0] for i in range(len(shifts))]
    batches = [torch.cat(needed[i:i + 8]) for i in range(0, len(needed), 8)]  # x and each T_d x, 8 maps a pass
    t = interleaved({
        "bare": lambda: run_bare(model, batches),
        "equivariance": lambda: sl.equivariance(model, x, shifts=shifts, batch_size=256),
    }, repeats)
    split = equivariance_split(model, x, shifts, repeats)
    ratio = t["equivariance"] / t["bare"]
    return (f"equivariance, 32 images x 12 shifts, every layer ({name}, {size}x{size})  bare {t['bare']:.3f} s  "
            f"shiftlab {t['equivariance']:.3f} s  ratio {ratio:.2f}  (target <= {target:g})\n"
            f"  time split of a run: forward passes and the rest {split['forward']:.3f} s, band-limited shifts "
            f"{split['shift']:.3f} s, comparison {split['compare']:.3f} s"), ratio


def bench_equivariance_time(repeats: int) -> tuple[str, float]:
    """:func:`equivariance_row` of each of :data:`EQ_MODELS`: the lines and the worst ratio over its target."""
    rows = [(equivariance_row(name, size, target, repeats), target) for name, size, target in EQ_MODELS]
    return "\n".join(line for (line, _), _ in rows), max(ratio / target for (_, ratio), target in rows)


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (VmHWM; Linux)."""
    with open("/proc/self/status") as f:
        line = next(row for row in f if row.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _peak_child(kind: str, queue: multiprocessing.Queue) -> None:
    with open("/proc/self/clear_refs", "w") as f:  # forget the peak inherited from the parent's fork
        f.write("5")
    torch.set_num_threads(1)
    model, x = zoo("maxpool_gap", 48), images(32, 48)
    shifts = ShiftSet.from_list(EQ_SHIFTS)
    if kind == "forward":  # one pass of the batch equivariance runs: x and 7 shifts of it
        batch = torch.cat([x] + [transform(x, shifts.offsets[i:i + 1], "circular", None)[0] for i in range(7)])
        with torch.inference_mode():
            model(batch)
    elif kind == "equivariance":
        sl.equivariance(model, x, shifts=shifts, batch_size=256)
    queue.put(_peak_rss())


def _peak(kind: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(kind, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value


def bench_equivariance_memory() -> tuple[str, float]:
    if torch.cuda.is_available():
        model, x = zoo("maxpool_gap", 48).cuda(), images(32, 48).cuda()
        shifts = ShiftSet.from_list(EQ_SHIFTS)
        batch = torch.cat([x] + [transform(x, shifts.offsets[i:i + 1], "circular", None)[0] for i in range(7)])
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            model(batch)
        fwd = torch.cuda.max_memory_allocated() - base
        torch.cuda.reset_peak_memory_stats()
        sl.equivariance(model, x, shifts=shifts, batch_size=256)
        eq = torch.cuda.max_memory_allocated() - base
        where = "CUDA max_memory_allocated"
    else:
        base, fwd, eq = _peak("base"), _peak("forward"), _peak("equivariance")
        fwd, eq = fwd - base, eq - base
        where = "CPU peak RSS above the set-up process"
    ratio = eq / max(fwd, 1)
    return (f"equivariance peak memory vs one forward pass of its batch ({where})  forward {fwd / 2**20:.0f} MiB  "
            f"shiftlab {eq / 2**20:.0f} MiB  ratio {ratio:.2f}  (target <= 1.5)"), ratio


def bench_certified(repeats: int) -> tuple[str, float]:
    size = 32
    model, x = zoo("strided_gap", size, padding="circular"), images(8, size)
    shifts = ShiftSet.full(size, size)
    naive = sl.invariance(model, x, shifts=shifts, certify=False, keep_predictions=True)
    cert = sl.invariance(model, x, shifts=shifts, certify=True, keep_predictions=True)
    same = torch.equal(naive.predictions, cert.predictions) and naive.consistency == cert.consistency
    t = interleaved({
        "naive": lambda: sl.invariance(model, x, shifts=shifts, certify=False),
        "certified": lambda: sl.invariance(model, x, shifts=shifts, certify=True),
    }, repeats)
    bound = size * size / 64
    speedup = t["naive"] / t["certified"]
    return (f"certified full circular profile, 8 images x {size * size} shifts (strided_gap, circular, S = 8)  "
            f"naive {t['naive']:.2f} s  certified {t['certified']:.3f} s  speed-up {speedup:.1f} "
            f"(bound {bound:.0f}, target >= {bound / 2:.0f})  identical numbers: {'yes' if same else 'NO'}"), speedup


def bench_growth(repeats: int) -> list[str]:
    rows = ["cost growth (strided_gap, width 8, zeros): seconds per 1,000 image-shifts; flat = linear growth"]

    def per_k(n: int, m: int, size: int) -> float:
        model, x = zoo("strided_gap", size, width=8), images(n, size)
        shifts = ShiftSet.grid(m)
        t = interleaved({"run": lambda: sl.invariance(model, x, shifts=shifts, mode="zeros", certify=False)}, repeats)
        return t["run"] / (n * len(shifts)) * 1000

    base = dict(n=200, m=2, size=32)
    for label, key, values in (("shifts |S|", "m", (1, 2, 3, 4)), ("images N", "n", (100, 200, 400, 800)),
                               ("image side", "size", (24, 32, 48, 64))):
        cells = []
        for v in values:
            args = dict(base, **{key: v})
            shown = (2 * v + 1) ** 2 if key == "m" else v
            cells.append(f"{shown}: {per_k(**args):.3f}")
        rows.append(f"  {label:<11} " + "   ".join(cells))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images of the invariance benchmark (default 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, torch "
          f"{torch.__version__}, {args.threads} thread(s); CUDA: {torch.cuda.is_available()}")
    for bench in (lambda: bench_invariance(args.images, args.repeats), lambda: bench_equivariance_time(args.repeats),
                  bench_equivariance_memory, lambda: bench_certified(args.repeats)):
        line, _ = bench()
        print(line, flush=True)
    for line in bench_growth(args.repeats):
        print(line, flush=True)


if __name__ == "__main__":
    main()
