"""Training steps with circular padding: shiftlab's direct pad gradient against autograd through F.pad.

Usage: python benchmarks/bench_circular_pad.py [--batch 64 --steps 20 --repeats 5 --threads 1]

The study trains every model with circular padding in its ``circular`` and ``probe_circular``
conditions, and every APS model pads circularly before its dense max. ``shiftlab.nn.circular_pad2d``
(used by the zoo's ``Conv2d``, ``CircularPad2d``, BlurPool and APS) computes the same values as
``F.pad(mode="circular")`` and the gradient in 4 slice additions; the reference is the same model
with that path switched off, so autograd differentiates ``F.pad``'s chain of copies. Each pair
trains ``--steps`` Adam steps from the same weights on the same batches (channels-last, as the
study trains) and is checked for equal parameters afterwards ("identical: yes/no"); timed repeats
alternate between the two. The table shows the median milliseconds per step and the ratio
F.pad / shiftlab (above 1: shiftlab is faster). A second table times the measurement's forward
passes (``torch.no_grad``), where ``F.pad`` computes the values either way and only the layout
differs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from shiftlab.nn import circular_pad as circular_pad_module
from shiftlab.zoo import build

#: (zoo model, padding_mode): the circular condition's models, and APS with the study's zero padding.
CASES = [("strided_gap", "circular"), ("maxpool_fc", "circular"), ("blurstrided_gap", "circular"),
         ("maxblur_gap", "circular"), ("aps_gap", "circular"), ("aps_gap", "zeros")]


def _padding(reference: bool) -> contextlib.AbstractContextManager:
    """``reference``: plain ``F.pad`` (autograd's backward, the layout dropped), as while tracing; else shiftlab's."""
    return mock.patch.object(circular_pad_module, "_traced", return_value=True) if reference else contextlib.nullcontext()


def _row(label: str, fast: list[float], slow: list[float], identical: bool) -> str:
    f, s = statistics.median(fast) * 1e3, statistics.median(slow) * 1e3
    return f"{label:28s} {f:12.1f} {s:10.1f} {s / f:16.2f}x  {'yes' if identical else 'NO'}"


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, reference: bool) -> float:
    """Seconds per Adam step; ``reference``: autograd through ``F.pad`` instead of the direct gradient."""
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    with _padding(reference):
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="Adam steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the study's workers use 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 1, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    print(f"batch {args.batch} on 48x48, width 16, {args.threads} thread(s), {args.steps} Adam steps per repeat, "
          f"median of {args.repeats} alternating repeats")
    print(f"{'':28s} {'shiftlab ms':>12s} {'F.pad ms':>10s} {'F.pad / shiftlab':>17s}  identical")
    for name, padding in CASES:
        model = build(name, num_classes=10, in_channels=1, width=16, input_size=(48, 48), padding_mode=padding,
                      seed=0).to(memory_format=torch.channels_last)
        fast, slow = copy.deepcopy(model), copy.deepcopy(model)
        _train(fast, x, y, 3, reference=False)
        _train(slow, x, y, 3, reference=True)
        identical = all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), slow.state_dict().values(), strict=True))
        t_fast, t_slow = [], []
        for _ in range(args.repeats):
            t_fast.append(_train(fast, x, y, args.steps, reference=False))
            t_slow.append(_train(slow, x, y, args.steps, reference=True))
        print(_row(f"{name} ({padding})", t_fast, t_slow, identical), flush=True)
    batch = torch.randn(4 * args.batch, 1, 48, 48, generator=g).contiguous(memory_format=torch.channels_last)
    print(f"\nmeasurement forward passes (torch.no_grad, eval), batch {batch.shape[0]}: F.pad's values either way, "
          "the layout kept or dropped")
    print(f"{'':28s} {'shiftlab ms':>12s} {'F.pad ms':>10s} {'F.pad / shiftlab':>17s}  identical")
    for name, padding in CASES:
        model = build(name, num_classes=10, in_channels=1, width=16, input_size=(48, 48), padding_mode=padding,
                      seed=0).to(memory_format=torch.channels_last).eval()
        outputs, times = {}, {False: [], True: []}
        with torch.no_grad():
            for reference in (False, True):
                with _padding(reference):
                    outputs[reference] = model(batch)
            for _ in range(args.repeats):
                for reference in (False, True):
                    with _padding(reference):
                        start = time.perf_counter()
                        model(batch)
                        times[reference].append(time.perf_counter() - start)
        print(_row(f"{name} ({padding})", times[False], times[True], torch.equal(outputs[False], outputs[True])),
              flush=True)


if __name__ == "__main__":
    main()
