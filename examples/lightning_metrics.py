"""Log shift invariance and per-layer equivariance from a PyTorch Lightning ``LightningModule``
with ``shiftlab.metrics`` (``docs/metrics.md``): the classic max-pool CNN of the zoo, trained for
one epoch on 600 MNIST-5k digits and validated on 200, on the CPU, in well under a minute.

    pip install torchmetrics lightning
    python examples/lightning_metrics.py [--out runs/lightning_metrics]

The metrics are updated in ``validation_step`` with the model and the batch, logged with
``self.log`` (Lightning computes them at the end of the epoch, synchronised across processes
under DDP, and resets them), and written by the CSV logger to ``<out>/.../metrics.csv``. They are
the numbers ``shiftlab.invariance`` and ``shiftlab.equivariance`` give for all the validation
images.
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MetricCollection

import shiftlab as sl
from shiftlab.data import ImageDataset, load
from shiftlab.metrics import (
    FlipRate,
    LayerEquivarianceError,
    ShiftConsistency,
    WorstCaseAccuracy,
)

SHIFTS = 2  # every shift in [-2, 2]^2: 25 shifts


class ShiftAwareClassifier(L.LightningModule):
    """A classifier whose validation logs its shift invariance and per-layer equivariance."""

    def __init__(self, model: torch.nn.Module, num_classes: int, example: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        # One configuration: in a MetricCollection the three metrics share their forward passes.
        self.invariance = MetricCollection({
            "consistency": ShiftConsistency(num_classes, SHIFTS),
            "flip_rate": FlipRate(num_classes, SHIFTS),
            "worst_case_accuracy": WorstCaseAccuracy(num_classes, SHIFTS),
        }, prefix="val/")
        # Built for the model's layers (the model itself is not kept by the metric).
        self.equivariance = LayerEquivarianceError(model, example, shifts=1, fields=["unaligned_error"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/accuracy", (self.model(x).argmax(dim=1) == y).float().mean())
        self.invariance.update(self.model, x, y)  # runs the model at every shift of the batch
        for name, metric in self.invariance.items():
            self.log(name, metric)  # computed and reset by Lightning at the end of the epoch
        self.equivariance.update(self.model, x)

    def on_validation_epoch_end(self) -> None:
        errors = self.equivariance.compute()  # {"<layer>/unaligned_error": value}, every process's images
        # NaN: a layer of stride 1 has no unaligned shift (every shift is a whole number of its pixels)
        self.log_dict({f"val/eq/{name}": value for name, value in errors.items() if not value.isnan()})
        self.equivariance.reset()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def run(out: str = "runs/lightning_metrics") -> tuple[ShiftAwareClassifier, ImageDataset, dict[str, float]]:
    """Train for one epoch and validate: the module, the validation set and what was logged."""
    torch.manual_seed(0)
    train = load("mnist-5k", split="train", limit=600)
    val = load("mnist-5k", split="test", limit=200)
    model = sl.zoo.build("maxpool_fc", num_classes=10, in_channels=1, width=8, input_size=28, seed=0)
    module = ShiftAwareClassifier(model, num_classes=10, example=val.images[:1])
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=CSVLogger(out), log_every_n_steps=10,
                        num_sanity_val_steps=0, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, DataLoader(TensorDataset(train.images, train.labels), batch_size=16, shuffle=True),
                DataLoader(TensorDataset(val.images, val.labels), batch_size=50))
    return module, val, {name: float(value) for name, value in trainer.callback_metrics.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/lightning_metrics", help="where the CSV logger writes")
    for name, value in sorted(run(parser.parse_args().out)[2].items()):
        print(f"{name:36s} {value:.4f}")
