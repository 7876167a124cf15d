"""Print every zoo architecture at random init: size, cost, field of view, circular-shift consistency.

    python examples/zoo_table.py            # 256 MNIST-5k test digits centred on 32x32, 64 circular shifts

The zoo is the full factorial, every downsampling x every head (``shiftlab.zoo.names()``).
Consistency is over a seeded sample of 64 circular shifts from [-15, 15]^2. At random init only
the architecture speaks: the aps_gap and aps_gmp models are exactly 1.
"""

import torch
from rich.console import Console
from rich.table import Table

import shiftlab as sl
from shiftlab.data import Canvas, load
from shiftlab.measure.shiftsets import ShiftSet


def main() -> None:
    data = load("mnist-5k", split="test").head(256)
    images = Canvas(28, 32).centred(data.images)
    shifts = ShiftSet.random(64, 15, seed=0)
    table = Table(title="shiftlab.zoo at random init (width 16, 1x32x32 input, 10 classes, seed 0)")
    for col in ("model", "params", "MACs", "RF (px)", "stride", "consistency", "± s.e."):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in sl.zoo.names():
        model = sl.zoo.build(name, input_size=32, seed=0).eval()
        size = sl.zoo.info(model, 32)
        res = sl.invariance(model, images, shifts=shifts, mode="circular")
        table.add_row(name, f"{size.params:,}", f"{size.macs:,}", str(size.receptive_field), str(size.total_stride),
                      f"{res.consistency:.4f}", f"{res.consistency_sem:.4f}")
    Console().print(table)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
