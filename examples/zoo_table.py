"""Print every zoo architecture at random init: parameters, total stride, circular-shift consistency.

    python examples/zoo_table.py            # 256 MNIST-5k test digits centred on 32x32, 64 circular shifts

Consistency is over a seeded sample of 64 circular shifts covering the whole 32x32 period,
(0, 0) included. At random init only the architecture speaks: aps_gap is exactly 1.
"""

import torch
from rich.console import Console
from rich.table import Table

import shiftlab as sl
from shiftlab.data import Canvas, load
from shiftlab.study.measurements import circular_shifts


def main() -> None:
    data = load("mnist-5k", split="test").head(256)
    images = Canvas(28, 32).centred(data.images)
    shifts = circular_shifts((32, 32), 64, seed=0)
    table = Table(title="shiftlab.zoo at random init (width 16, 1x32x32 input, 10 classes, seed 0)")
    for col in ("model", "parameters", "total stride", "circular consistency", "± s.e."):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in sl.zoo.names():
        model = sl.zoo.build(name, input_size=32, seed=0).eval()
        res = sl.invariance(model, images, shifts=shifts, mode="circular")
        table.add_row(name, f"{sl.zoo.count_parameters(model):,}", str(model.total_stride),
                      f"{res.consistency:.4f}", f"{res.consistency_sem:.4f}")
    Console().print(table)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
