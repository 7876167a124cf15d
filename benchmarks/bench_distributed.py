"""``sl.invariance`` under a 2-process gloo group against one process (docs/distributed.md).

Usage: python benchmarks/bench_distributed.py [--images 1000 --shifts 3 --repeats 3]

A study zoo model (``maxpool_gap``, width 16, 28x28, random weights) measured on N MNIST-5k
images at every shift in ``[-m, m]^2`` (zero-filled), with one torch thread per process: one
process measures all the images; two processes (gloo, ``torch.multiprocessing`` spawn) each
measure their shard and add the statistics. Each repeat starts a fresh 1-process run, then a
fresh 2-process run (interleaved); each times one ``invariance`` call after a warm-up, from a
barrier to the last rank's end, so process start-up and the model build are not counted. The
wall-time ratio (2 processes / 1) is of the medians; 0.5 is perfect scaling on two free cores.
The CPU seconds of the call, summed over the ranks, show the cost of distribution whatever else
the machine runs (1.0: none). Both runs' counts must be identical (checked).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import shiftlab as sl
from shiftlab.data import load


def _rank(rank: int, world: int, folder: str, n: int, shifts: int) -> None:
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    data = load("mnist-5k", limit=n)
    model = sl.zoo.build("maxpool_gap", num_classes=10, in_channels=1, width=16, input_size=28, seed=0).eval()
    kwargs = {"shifts": shifts, "mode": "zeros", "batch_size": 256}
    sl.invariance(model, data.images[:16], data.labels[:16], **kwargs)  # warm-up (and a first exchange)
    if world > 1:
        dist.barrier()
    start, cpu = time.perf_counter(), time.process_time()
    result = sl.invariance(model, data.images, data.labels, **kwargs)
    cpu = time.process_time() - cpu  # this rank's own work, whatever else the machine runs
    if world > 1:
        dist.barrier()  # the slowest rank's end
    seconds = time.perf_counter() - start
    cpus = [cpu] * world
    if world > 1:
        dist.all_gather_object(cpus, cpu)
    if rank == 0:
        torch.save((seconds, sum(cpus), result.to_dict()), f"{folder}/result.pt")
    if world > 1:
        dist.destroy_process_group()


def timed(world: int, n: int, shifts: int) -> tuple[float, float, dict]:
    """Wall seconds of one ``invariance`` call on ``world`` processes, CPU seconds summed over the
    ranks, and its result."""
    with tempfile.TemporaryDirectory() as folder:
        mp.start_processes(_rank, args=(world, folder, n, shifts), nprocs=world, start_method="spawn")
        return torch.load(f"{folder}/result.pt", weights_only=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--shifts", type=int, default=3, help="m: every shift in [-m, m]^2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{args.images} MNIST-5k images x {(2 * args.shifts + 1) ** 2} shifts, maxpool_gap width 16, 1 thread/process")
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    results: dict[int, dict] = {}
    for repeat in range(args.repeats):
        for world in (1, 2):
            seconds, cpu_seconds, results[world] = timed(world, args.images, args.shifts)
            times[world].append(seconds)
            cpu[world].append(cpu_seconds)
            print(f"  repeat {repeat + 1}: {world} process{'es' if world > 1 else ''}  {seconds:.2f} s wall, "
                  f"{cpu_seconds:.2f} CPU s", flush=True)
    one, two = (results[w] for w in (1, 2))
    same = all(one[k] == two[k] for k in one if k not in ("top1_prob_change", "mean_top1_prob", "device"))
    t1, t2 = statistics.median(times[1]), statistics.median(times[2])
    c1, c2 = statistics.median(cpu[1]), statistics.median(cpu[2])
    print(f"invariance: 1 process {t1:.2f} s, 2 processes (gloo) {t2:.2f} s, wall ratio {t2 / t1:.3f} "
          f"(perfect scaling 0.5); CPU seconds (all ranks) {c1:.2f} vs {c2:.2f}, ratio {c2 / c1:.3f} (no overhead: 1.0); "
          f"counts identical: {same}; consistency {one['consistency']:.6f}")


if __name__ == "__main__":
    main()
