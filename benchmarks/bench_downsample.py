"""Forward + backward time of the shiftlab.nn downsampling layers against plain max-pooling.

Usage: python benchmarks/bench_downsample.py [--batch 32 --channels 64 --size 64 --repeats 15]

Every layer maps a float32 batch [N, C, H, W] to [N, C, H/2, W/2]. Besides the library layers
the benchmark times two straightforward reference implementations written here:

- "reference blur-pool": reflect-pad (1 left/top, 2 right/bottom), then a depthwise
  ``F.conv2d`` (stride 2, groups=C) with the normalised binomial kernel
  ``outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64``, built once;
- "reference APS": the 4 polyphase components ``x[..., i::2, j::2]`` taken with a Python loop
  over (i, j) in raster order, each component's L2 norm per sample computed in a loop, the
  first maximum per sample picked with a Python loop over the batch, the picks stacked.

Before timing, each reference's output is checked against its library layer
(``torch.allclose``, atol 1e-6) and "reference matches: yes/no" is printed. Repeats are
interleaved round-robin across all candidates (so load changes hit all of them alike) after a
warm-up; the table shows the median and minimum over repeats, the median's ratio to
nn.MaxPool2d(2) ("vs max-pool") and, for BlurPool2d and APSPool2d, to their reference
("vs reference"; below 1 means the library layer is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftlab.nn import APSPool2d, BlurPool2d, MaxAPSPool2d, MaxBlurPool2d

BLUR = "BlurPool2d(filt_size=4)"
APS = "APSPool2d(stride=2)"
BLUR_REFERENCE = "reference blur-pool"
APS_REFERENCE = "reference APS"
#: Library layer -> the reference implementation it is compared with.
REFERENCES = {BLUR: BLUR_REFERENCE, APS: APS_REFERENCE}


def reference_blur_pool(channels: int) -> Callable[[Tensor], Tensor]:
    """Reflect-pad, then depthwise conv with the [1, 3, 3, 1] binomial kernel at stride 2."""
    row = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = (torch.outer(row, row) / 64.0).expand(channels, 1, 4, 4).contiguous()

    def blur_pool(x: Tensor) -> Tensor:
        # filt_size 4: (4 - 1) // 2 = 1 before, ceil(3 / 2) = 2 after (as shiftlab.nn.blurpool)
        padded = F.pad(x, (1, 2, 1, 2), mode="reflect")
        return F.conv2d(padded, kernel, stride=2, groups=channels)

    return blur_pool


def reference_aps(x: Tensor) -> Tensor:
    """Per sample, keep the stride-2 polyphase component of largest L2 norm over (C, H, W).

    Ties go to the first maximum in raster order over (i, j), as in shiftlab.nn.aps; the norms
    only select, so they are computed without autograd (gradients flow through the pick).
    """
    components = []
    for i in (0, 1):
        for j in (0, 1):
            components.append(x[..., i::2, j::2])
    picked = []
    for b in range(x.shape[0]):
        with torch.no_grad():
            norms = [float(torch.linalg.vector_norm(component[b])) for component in components]
        best = 0
        for k in range(1, len(norms)):
            if norms[k] > norms[best]:  # strict: the first maximum wins
                best = k
        picked.append(components[best][b])
    return torch.stack(picked)


def layers(channels: int) -> dict[str, Callable[[Tensor], Tensor]]:
    return {
        "nn.MaxPool2d(2)": nn.MaxPool2d(2),
        "subsample x[..., ::2, ::2]": lambda x: x[..., ::2, ::2],
        BLUR: BlurPool2d(channels, stride=2, filt_size=4),
        BLUR_REFERENCE: reference_blur_pool(channels),
        APS: APSPool2d(channels, stride=2),
        APS_REFERENCE: reference_aps,
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
    with torch.no_grad():
        matches = {
            layer: torch.allclose(candidates[reference](x), candidates[layer](x), atol=1e-6)
            for layer, reference in REFERENCES.items()
        }
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
    for layer, reference in REFERENCES.items():
        print(f"{layer}: {reference} matches: {'yes' if matches[layer] else 'no'}")
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    baseline = medians["nn.MaxPool2d(2)"]
    print(f"{'layer':<28}{'median ms':>11}{'min ms':>9}{'vs max-pool':>13}{'vs reference':>14}")
    for name, samples in times.items():
        reference = REFERENCES.get(name)
        versus = f"{medians[name] / medians[reference]:>14.2f}" if reference else ""
        print(
            f"{name:<28}{medians[name] * 1e3:>11.2f}{min(samples) * 1e3:>9.2f}"
            f"{medians[name] / baseline:>13.2f}{versus}"
        )


if __name__ == "__main__":
    main()
