"""shiftlab's training loop (:func:`shiftlab.training.train`) against a bare PyTorch loop on the same
model, batch size, optimizer and images: images/s of each and their ratio.

Usage: python benchmarks/bench_training_loop.py [--models maxpool_gap,strided_fc --images 1024 --repeats 5]

Each model is built as the study builds it (10 classes, 1 input channel, width 16, 48x48, zero
padding, seed 0, channels-last), one thread (as each study worker runs). One epoch over
``--images`` random 48x48 images (random labels: only throughput is measured), batch 64, AdamW
(lr 3e-3, no weight decay):

- ``bare``: ``randperm`` batches, forward, cross-entropy, ``zero_grad``, ``backward``, ``step``;
- ``shiftlab``: ``train(model, images, labels, TrainConfig(epochs=1, batch_size=64, lr=3e-3,
  precise_bn=False))``: the same work plus shiftlab's per-step bookkeeping (the loss checked
  for NaN, the learning-rate schedule, accuracy counted, seeded random streams);
- ``shiftlab, study settings``: as the study trains (random translations up to 4 px and the
  exact BatchNorm statistics recomputed at the end of training, one forward pass over up to
  2,048 images): more work than the bare loop does, shown for what it costs, not held to the
  target. The recount runs once per training run, so in this one-epoch benchmark it weighs
  several times what it weighs in a study's 10-epoch run.

Every repeat starts from the same fresh copy of the model; the settings run round-robin
(``--repeats`` rounds after one untimed warm-up round), so load changes on a shared machine hit
them alike; the table shows the median images/s and shiftlab / bare (target: at least 0.95).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftlab import zoo
from shiftlab.training import TrainConfig, train

SIZE, BATCH, LR, CLASSES = 48, 64, 3e-3, 10


def _model(name: str) -> nn.Module:
    model = zoo.build(name, num_classes=CLASSES, in_channels=1, width=16, input_size=SIZE, seed=0)
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def bare_epoch(model: nn.Module, images: Tensor, labels: Tensor) -> None:
    """One epoch of the plainest loop that does the same optimisation."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    model.train()
    for index in torch.randperm(len(labels)).split(BATCH):
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()


def shiftlab_epoch(model: nn.Module, images: Tensor, labels: Tensor) -> None:
    train(model, images, labels, TrainConfig(epochs=1, batch_size=BATCH, lr=LR, precise_bn=False))


def study_epoch(model: nn.Module, images: Tensor, labels: Tensor) -> None:
    train(model, images, labels, TrainConfig(epochs=1, batch_size=BATCH, lr=LR, augment="translate", max_shift=4))


SETTINGS: dict[str, Callable[[nn.Module, Tensor, Tensor], None]] = {
    "bare": bare_epoch, "shiftlab": shiftlab_epoch, "shiftlab, study settings": study_epoch}


def measure(name: str, n_images: int, repeats: int) -> dict[str, float]:
    """Median images/s of each setting on model ``name``."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n_images, 1, SIZE, SIZE, generator=generator)
    labels = torch.randint(0, CLASSES, (n_images,), generator=generator)
    fresh = _model(name)
    times: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
    for round_ in range(repeats + 1):
        for setting, epoch in SETTINGS.items():
            model = copy.deepcopy(fresh)
            start = time.perf_counter()
            epoch(model, images, labels)
            if round_:  # round 0 warms up
                times[setting].append(time.perf_counter() - start)
    return {setting: n_images / statistics.median(t) for setting, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="maxpool_gap,strided_fc")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"one thread, {args.images} images of 1x{SIZE}x{SIZE} per epoch, batch {BATCH}, AdamW; median of "
          f"{args.repeats} rounds (images/s)")
    print(f"{'model':<14} {'bare':>8} {'shiftlab':>9} {'ratio':>6} {'study settings':>15} {'ratio':>6}")
    for name in args.models.split(","):
        rate = measure(name, args.images, args.repeats)
        bare = rate["bare"]
        print(f"{name:<14} {bare:8.0f} {rate['shiftlab']:9.0f} {rate['shiftlab'] / bare:6.3f} "
              f"{rate['shiftlab, study settings']:15.0f} {rate['shiftlab, study settings'] / bare:6.3f}", flush=True)
    print("ratio: shiftlab's images/s over the bare loop's (target for `shiftlab`: at least 0.95)")


if __name__ == "__main__":
    main()
