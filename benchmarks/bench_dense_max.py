"""Measurement-time forward passes: shiftlab's stride-1 max against nn.MaxPool2d's, side by side.

Usage: python benchmarks/bench_dense_max.py [--batch 256 --repeats 7 --threads 1]

Under ``torch.no_grad`` (as every measurement runs) ``shiftlab.nn.MaxPool2d(k, stride=1)`` takes
the max separably with ``torch.maximum``; ``nn.MaxPool2d`` calls ``max_pool2d``. The benchmark
times both on the dense-max inputs of the study's zoo (width 16 on the 48 x 48 canvas: 16 x 48 x 48,
32 x 24 x 24, 64 x 12 x 12), then whole zoo models (``maxblur_gap``, ``aps_gap``) with their
dense max as built and swapped back to ``nn.MaxPool2d``. Every pair is checked for equality bit
for bit first ("identical: yes/no"). Repeats are interleaved round-robin after a warm-up; the
table shows medians and the ratio nn.MaxPool2d / shiftlab (above 1: shiftlab is faster).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from shiftlab.nn import MaxPool2d
from shiftlab.zoo import build


def _slow_copy(model: nn.Module) -> nn.Module:
    """``model`` with every ``shiftlab.nn.MaxPool2d`` replaced by an ``nn.MaxPool2d`` of the same
    arguments (the same weights: the pools have none)."""

    slow = copy.deepcopy(model)
    for module in list(slow.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is MaxPool2d:
                setattr(module, child_name, nn.MaxPool2d(child.kernel_size, stride=child.stride))
    return slow


def _seconds(fn: Callable[[], Tensor]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the study's workers use 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pairs: dict[str, tuple[Callable[[], Tensor], Callable[[], Tensor]]] = {}
    for c, s in ((16, 48), (32, 24), (64, 12)):
        x = torch.relu(torch.randn(args.batch, c, s + 1, s + 1))  # +1: MaxAPSPool2d pads one circularly
        fast, slow = MaxPool2d(2, stride=1), nn.MaxPool2d(2, stride=1)
        pairs[f"max 2x2 stride 1 on {c}x{s + 1}x{s + 1}"] = (lambda f=fast, x=x: f(x), lambda f=slow, x=x: f(x))
    canvas = torch.rand(args.batch, 1, 48, 48)
    for name in ("maxblur_gap", "aps_gap"):
        model = build(name, num_classes=10, in_channels=1, width=16, input_size=(48, 48)).eval()
        slow = _slow_copy(model)
        pairs[f"{name} forward (48x48)"] = (lambda m=model: m(canvas), lambda m=slow: m(canvas))

    with torch.no_grad():
        identical = {k: torch.equal(fast(), slow()) for k, (fast, slow) in pairs.items()}
        times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
        for step in range(args.warmup + args.repeats):
            for k, (fast, slow) in pairs.items():
                t_fast, t_slow = _seconds(fast), _seconds(slow)
                if step >= args.warmup:
                    times[k][0].append(t_fast)
                    times[k][1].append(t_slow)
    print(f"batch {args.batch}, {args.threads} thread(s), median of {args.repeats} interleaved repeats, torch.no_grad")
    print(f"{'':40s} {'shiftlab ms':>12s} {'nn ms':>10s} {'nn / shiftlab':>14s}  identical")
    for k, (fast, slow) in times.items():
        f, s = statistics.median(fast) * 1e3, statistics.median(slow) * 1e3
        print(f"{k:40s} {f:12.1f} {s:10.1f} {s / f:14.2f}x  {'yes' if identical[k] else 'NO'}")


if __name__ == "__main__":
    main()
