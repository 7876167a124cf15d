"""Training throughput (images/s) of every zoo model, one thread per worker as in the study.

Usage: python benchmarks/bench_training.py [--models strided_gap,aps_gap --steps 6 --warmup 2 --repeats 2]

Each model is built as the study builds it (``shiftlab.study.job._build``: 10 classes, 1 input
channel, width 16, input 48x48, zero padding, seed 0, channels-last) and trained with AdamW
(lr 3e-3, no weight decay, the study's defaults) on cross-entropy, batch 64, on random float32
48x48 images and random labels (random data: only throughput is measured). A measurement
builds the model, runs ``--warmup`` untimed optimizer steps and times ``--steps`` more.
Three settings, measured in the same run:

- 1 worker x 1 thread: one spawned worker process with ``torch.set_num_threads(1)``;
- 1 process x default threads: this process, with torch's default thread count;
- N workers x 1 thread: N = ``len(os.sched_getaffinity(0))`` spawned worker processes, one
  thread each, all training the same model at once (how the study runs). They start timing
  together (a barrier) and keep training untimed until the last one has finished timing, so
  every worker is timed under full load; each reports its own images/s and the table shows
  their sum.

For each model the settings run round-robin, ``--repeats`` rounds (so load changes hit all
settings alike); the table shows the median over rounds and the speed-up of N workers over 1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from shiftlab import zoo

BATCH = 64
INPUT_SIZE = 48
NUM_CLASSES = 10
LR = 3e-3
DATA_BATCHES = 4  # distinct random batches, cycled
BARRIER_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Task:
    model: str
    steps: int
    warmup: int
    sync: bool = False  # start timing at the shared barrier, keep busy until all have timed


def build(name: str) -> torch.nn.Module:
    """The model as ``shiftlab.study.job._build`` makes it for this benchmark's data."""
    model = zoo.build(name, num_classes=NUM_CLASSES, in_channels=1, width=16, input_size=INPUT_SIZE,
                      padding_mode="zeros", seed=0)
    return model.to(memory_format=torch.channels_last)


def train_images_per_second(task: Task, barrier: Any = None, finished: Any = None, parties: int = 1) -> float:
    """Build ``task.model``, warm up, time ``task.steps`` optimizer steps; return images/s."""
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(BATCH, 1, INPUT_SIZE, INPUT_SIZE, generator=generator) for _ in range(DATA_BATCHES)]
    labels = [torch.randint(0, NUM_CLASSES, (BATCH,), generator=generator) for _ in range(DATA_BATCHES)]
    model = build(task.model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)

    def step(i: int) -> None:  # as shiftlab.training.loop._step
        x, y = images[i % DATA_BATCHES], labels[i % DATA_BATCHES]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        int((logits.argmax(dim=1) == y).sum())

    for i in range(task.warmup):
        step(i)
    if task.sync:
        barrier.wait()
    start = time.perf_counter()
    for i in range(task.steps):
        step(i)
    seconds = time.perf_counter() - start
    if task.sync:
        with finished.get_lock():
            finished.value += 1
        i = task.steps
        while finished.value < parties:  # keep the load on until every worker has timed
            step(i)
            i += 1
    return task.steps * BATCH / seconds


def worker(rank: int, tasks: Any, results: Any, barrier: Any, finished: Any, parties: int) -> None:
    torch.set_num_threads(1)
    while (task := tasks.get()) is not None:
        try:
            results.put((rank, train_images_per_second(task, barrier, finished, parties), None))
        except Exception:  # reported to the parent, which raises
            barrier.abort()
            results.put((rank, None, traceback.format_exc()))


class Workers:
    """``count`` spawned single-threaded worker processes, each with its own task queue."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = count
        self.results = context.Queue()
        self.barrier = context.Barrier(count, timeout=BARRIER_TIMEOUT_S)
        self.finished = context.Value("i", 0)
        self.queues = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(target=worker, args=(rank, queue, self.results, self.barrier, self.finished, count),
                            daemon=True)
            for rank, queue in enumerate(self.queues)
        ]
        for process in self.processes:
            process.start()

    def run(self, task: Task, count: int) -> list[float]:
        """Run ``task`` on workers ``0..count-1`` at once; their images/s."""
        if task.sync:
            if count != self.count:
                raise ValueError("a synchronised task runs on all workers")
            self.finished.value = 0
        for queue in self.queues[:count]:
            queue.put(task)
        rates = []
        for _ in range(count):
            rank, rate, error = self.results.get()
            if error is not None:
                raise RuntimeError(f"worker {rank} failed on {task.model}:\n{error}")
            rates.append(rate)
        if task.sync:
            self.barrier.reset()
        return rates

    def close(self) -> None:
        for queue in self.queues:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=30)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(zoo.names()), help="comma-separated zoo names (default: all)")
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps before timing")
    parser.add_argument("--repeats", type=int, default=2, help="round-robin rounds over the settings")
    args = parser.parse_args()
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    for name in models:
        zoo.spec(name)  # ValueError listing the zoo for an unknown name
    if args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --repeats >= 1")

    cores = len(os.sched_getaffinity(0))
    threads = torch.get_num_threads()
    print(
        f"{cores} cores usable (os.cpu_count() {os.cpu_count()}, {cpu_name()}), torch {torch.__version__} "
        f"(default {threads} threads), python {platform.python_version()}"
    )
    print(
        f"training, batch {BATCH}, float32 1x{INPUT_SIZE}x{INPUT_SIZE}, AdamW lr {LR}, channels-last; "
        f"{args.steps} timed steps after {args.warmup} warm-up, median of {args.repeats} round-robin rounds"
    )
    one_label, default_label, many_label = "1w x 1t", f"1p x {threads}t", f"{cores}w x 1t"
    print(f"{'model':<17}{'MACs':>10}{one_label + ' img/s':>15}{default_label + ' img/s':>15}{many_label + ' img/s':>15}"
          f"{'speed-up':>10}")
    sys.stdout.flush()

    workers = Workers(cores)
    try:
        for name in models:
            task = Task(name, args.steps, args.warmup)
            single: list[float] = []
            default: list[float] = []
            parallel: list[float] = []
            for _ in range(args.repeats):
                single.append(workers.run(task, 1)[0])
                default.append(train_images_per_second(task))
                parallel.append(sum(workers.run(Task(name, args.steps, args.warmup, sync=True), cores)))
            macs = zoo.info(build(name), INPUT_SIZE).macs
            one, many = statistics.median(single), statistics.median(parallel)
            print(
                f"{name:<17}{macs / 1e6:>9.2f}M{one:>15.0f}{statistics.median(default):>15.0f}"
                f"{many:>15.0f}{many / one:>9.2f}x",
                flush=True,
            )
    finally:
        workers.close()


if __name__ == "__main__":
    main()
