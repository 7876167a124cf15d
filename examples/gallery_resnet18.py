"""ResNet-18 at ImageNet scale, 224 x 224, on photographs from ``skimage.data``: the original, Zhang's
anti-aliased conversion and the APS conversion with circular padding, side by side.

    pip install scikit-image
    python examples/gallery_resnet18.py                              # random weights (seed 0)
    python examples/gallery_resnet18.py --weights resnet18-f37072fd.pth   # your torchvision checkpoint

The weights are random (torchvision's initialisation, seed 0) unless ``--weights`` names a local
state-dict file with torchvision's ResNet-18 keys; nothing is downloaded. A random ResNet-18 gives
every photograph the same class with a near-flat softmax, so its top-1 consistency is 1 whatever
the architecture does (the table's ``degenerate`` column; ``docs/definitions.md``, "Degenerate
predictions"); what measures the architecture then is the change of the softmax and of the
globally pooled features under shifts. With trained weights the consistencies mean what they say.

1. Invariance over 16 shifts drawn from ``[-8, 8]^2`` (seed 0), twice: circular shifts of the
   224 x 224 photograph, and Zhang's protocol, 224 x 224 crops of a 240 x 240 photograph displaced
   from its centre by the shift.
2. The per-layer equivariance profile under circular shifts by (1, 1), (-3, 5) and (32, 32) (the
   last aligned with every stride of the network), and the first layer that breaks, at all and in
   the interior.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

import shiftlab as sl
from shiftlab.cli.tables import equivariance_table
from shiftlab.gallery.imagenet_resnet import Measured, load_resnet18, measure, photographs, variants

#: Errors at or below this count as none (float32 rounding sits far below it).
TOL = 1e-4


@dataclass(frozen=True)
class Setting:
    """What the example measures: photographs, the size the models see, the shifts."""

    photos: tuple[str, ...]
    side: int
    max_shift: int
    n_shifts: int
    profile_shifts: tuple[tuple[int, int], ...]


FULL = Setting(("astronaut", "chelsea", "coffee", "rocket"), 224, 8, 16, ((0, 0), (1, 1), (-3, 5), (32, 32)))
#: The tests' setting: two photographs at 128 x 128, four shifts.
SMOKE = Setting(("astronaut", "chelsea"), 128, 8, 4, ((0, 0), (1, 1), (32, 32)))


def run(setting: Setting, weights: str | None = None) -> tuple[list[sl.ConversionReport | None], list[Measured]]:
    """Build the three models and measure them; also returns the conversion reports."""
    sources = photographs(setting.photos, setting.side + 2 * setting.max_shift)
    models = variants(load_resnet18(weights), sources[:, :, :setting.side, :setting.side])
    shifts = sl.ShiftSet.random(setting.n_shifts, setting.max_shift, seed=0)
    measured = measure(models, sources, side=setting.side, shifts=shifts, profile_shifts=setting.profile_shifts)
    return [v.report for v in models], measured


#: Where the compact profile looks: the input, the stem, each stage's output, the global pool.
STAGES = ("normalize", "resnet.relu", "resnet.maxpool", "resnet.layer1.1", "resnet.layer2.1", "resnet.layer3.1",
          "resnet.layer4.1", "resnet.avgpool")


def _first_break(profile: sl.EquivarianceResult, interior: bool) -> str:
    layer = profile.first_break(TOL, interior=interior)
    return "none" if layer is None else f"{layer.name} ({layer.kind})"


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def side_by_side(results: list[Measured]) -> Table:
    """One row per model: consistencies, softmax changes, the certificate, the first breaks."""
    table = Table(title="invariance over the shifts; first breaks of the per-layer profile")
    for column in ("model", "consistency circular", "consistency crops", "top-1 prob change circular",
                   "top-1 prob change crops", "certificate", "first break", "first break in the interior"):
        table.add_column(column)
    for m in results:
        crop = m.crop
        table.add_row(
            m.name, f"{m.circular.consistency:.3f}", "-" if crop is None else f"{crop.consistency:.3f}",
            f"{m.circular.top1_prob_change:.2e}", "-" if crop is None else f"{crop.top1_prob_change:.2e}",
            "holds" if m.circular.certificate and m.circular.certificate.holds else "fails",
            _first_break(m.profile, False), _first_break(m.profile, True))
    return table


def stage_profile(results: list[Measured]) -> Table:
    """The error of each stage's output under the aligned / unaligned shifts (multiples of its
    stride / the others), one column per model."""
    table = Table(title="per-layer profile at the stage outputs: relative L2 error, aligned / unaligned shifts")
    table.add_column("layer")
    for m in results:
        table.add_column(m.name)
    layers = [{layer.name: layer for layer in m.profile.layers} for m in results]
    for name in STAGES:
        cells = []
        for by_name in layers:
            layer = by_name.get(name)
            cells.append("-" if layer is None else
                         f"{_error(layer.aligned_error)} / {_error(layer.unaligned_error)}")
        table.add_row(name, *cells)
    return table


def print_result(reports: list[sl.ConversionReport | None], results: list[Measured], console: Console,
                 profiles: bool = False) -> None:
    """The side-by-side tables, the certificates and degenerate-prediction notes; with ``profiles``
    every model's whole per-layer table."""
    for m, report in zip(results, reports, strict=True):
        if report is not None and report.shared_phases:
            console.print(f"{m.name}: phases shared at {', '.join(s.merge.path for s in report.shared_phases)}")
    console.print(side_by_side(results))
    console.print(stage_profile(results))
    for m in results:
        if m.circular.certificate is not None:
            console.print(f"{m.name}, certificate: {m.circular.certificate.reason}")
        if m.circular.degenerate:
            console.print(f"{m.name}, degenerate: {m.circular.degenerate}")
    for m in results if profiles else []:
        console.print(equivariance_table(m.profile, tol=TOL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="a local state-dict file with torchvision's ResNet-18 keys")
    parser.add_argument("--smoke", action="store_true", help="the tests' tiny setting")
    parser.add_argument("--profiles", action="store_true", help="also print every model's whole per-layer table")
    args = parser.parse_args()
    start = time.perf_counter()
    reports, results = run(SMOKE if args.smoke else FULL, args.weights)
    console = Console(width=200)
    print_result(reports, results, console, args.profiles)
    console.print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
