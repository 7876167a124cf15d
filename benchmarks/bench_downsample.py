"""Forward + backward time of the shiftlab.nn downsampling layers against plain max-pooling.

Usage: python benchmarks/bench_downsample.py [--batch 32 --channels 64 --size 64 --repeats 15]

Every layer maps a float32 batch [N, C, H, W] to [N, C, H/2, W/2]. Repeats are interleaved
round-robin across the layers (so load changes hit all of them alike) after a warm-up; the
table shows the median and minimum over repeats and the median's ratio to nn.MaxPool2d(2).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from shiftlab.nn import APSPool2d, BlurPool2d, MaxAPSPool2d, MaxBlurPool2d


def layers(channels: int) -> dict[str, Callable[[Tensor], Tensor]]:
    return {
        "nn.MaxPool2d(2)": nn.MaxPool2d(2),
        "subsample x[..., ::2, ::2]": lambda x: x[..., ::2, ::2],
        "BlurPool2d(filt_size=4)": BlurPool2d(channels, stride=2, filt_size=4),
        "APSPool2d(stride=2)": APSPool2d(channels, stride=2),
        "MaxBlurPool2d(2, 2)": MaxBlurPool2d(channels, kernel_size=2, stride=2),
        "MaxAPSPool2d(2, 2)": MaxAPSPool2d(channels, kernel_size=2, stride=2),
    }


def forward_backward_seconds(layer: Callable[[Tensor], Tensor], x: Tensor) -> float:
    x.grad = None
    start = time.perf_counter()
    layer(x).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, requires_grad=True)
    candidates = layers(args.channels)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for step in range(args.warmup + args.repeats):
        for name, layer in candidates.items():
            seconds = forward_backward_seconds(layer, x)
            if step >= args.warmup:
                times[name].append(seconds)

    print(
        f"forward+backward, float32 [{args.batch}, {args.channels}, {args.size}, {args.size}], "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"median of {args.repeats} after {args.warmup} warm-up"
    )
    baseline = statistics.median(times["nn.MaxPool2d(2)"])
    print(f"{'layer':<28}{'median ms':>11}{'min ms':>9}{'x maxpool':>11}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<28}{median * 1e3:>11.2f}{min(samples) * 1e3:>9.2f}{median / baseline:>11.2f}")


if __name__ == "__main__":
    main()
