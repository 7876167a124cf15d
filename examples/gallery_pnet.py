"""Measure a real fully convolutional detector: MTCNN's P-Net (facenet-pytorch) on images from
``skimage.data``.

    pip install --no-deps facenet-pytorch && pip install scikit-image
    python examples/gallery_pnet.py                 # a few seconds on a CPU

P-Net (``shiftlab.gallery.load_pnet``, ``docs/gallery.md``) maps an RGB image to a map of face
probabilities, one per 12 x 12 window, windows 2 pixels apart: three unpadded 3x3 convolutions
with PReLU, one 2x2 max-pool of stride 2, a 1x1 head. Each image is cropped to its centred square
and resized (area averaging, as MTCNN's pyramid does) to 64 x 64, where the astronaut's face is
about 14 pixels tall: the scale P-Net is made for.

1. Detection: where the face-probability map of ``astronaut`` peaks, and its highest value on
   ``brick`` (no face).
2. Equivariance of every layer under circular shifts of the image by every ``(dy, dx)`` in
   ``[-2, 2]^2`` (``docs/definitions.md``, "Equivariance metrics"), on four images (astronaut,
   camera, coffee, chelsea), and EQ-T of the output map, over all the shifts and separately over
   the shifts by multiples of the network's stride 2 (even) and the others (odd).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.console import Console

import shiftlab as sl
from shiftlab.cli.tables import equivariance_table
from shiftlab.gallery import load_pnet
from shiftlab.gallery.images import rgb_tensor
from shiftlab.gallery.onnx_models import centre_crop
from shiftlab.gallery.pnet import window_centre

SIDE = 64
PROFILE_IMAGES = ("astronaut", "camera", "coffee", "chelsea")
MAX_SHIFT = 2
#: Errors at or below this count as none (float32 rounding sits far below it).
TOL = 1e-4


@dataclass
class Peak:
    """The highest face probability on an image and the centre ``(row, column)`` of its 12 x 12
    window, in the pixels of the original image."""

    image: str
    probability: float
    centre: tuple[float, float]


@dataclass
class PNetGallery:
    """What the example prints: the peaks, the per-layer profile, EQ-T over even and odd shifts."""

    peaks: list[Peak]
    profile: sl.EquivarianceResult
    eq_t_even_db: float | None
    eq_t_odd_db: float | None


def skimage_image(name: str, side: int = SIDE) -> tuple[torch.Tensor, float]:
    """``skimage.data.<name>()`` as ``[1, 3, side, side]`` RGB in ``[0, 1]`` (centred square, area
    resize), and the scale from the network's pixels back to the original image's."""
    from skimage import data

    image = rgb_tensor(getattr(data, name)())
    short = min(image.shape[-2:])
    return F.interpolate(centre_crop(image, short), size=(side, side), mode="area"), short / side


def peak(model: torch.nn.Module, name: str) -> Peak:
    """Where the face-probability map of ``skimage.data.<name>()`` is highest."""
    image, scale = skimage_image(name)
    with torch.inference_mode():
        probability = model(image)[0, 0]
    i, j = divmod(int(probability.argmax()), probability.shape[1])
    row, col = window_centre(i, j)
    return Peak(name, float(probability.max()), (row * scale, col * scale))


def run() -> PNetGallery:
    model = load_pnet()
    images = torch.cat([skimage_image(name)[0] for name in PROFILE_IMAGES])
    profile = sl.equivariance(model, images, shifts=MAX_SHIFT, mode="circular")
    grid = [(dy, dx) for dy in range(-MAX_SHIFT, MAX_SHIFT + 1) for dx in range(-MAX_SHIFT, MAX_SHIFT + 1)]
    even = [d for d in grid if d[0] % 2 == 0 and d[1] % 2 == 0]
    odd = [(0, 0)] + [d for d in grid if d not in even]

    def eq_t(shifts: list[tuple[int, int]]) -> float | None:
        return sl.equivariance(model, images, shifts=shifts, mode="circular", layers=[]).output_eq_t_db

    return PNetGallery([peak(model, "astronaut"), peak(model, "brick")], profile, eq_t(even), eq_t(odd))


def print_result(result: PNetGallery, console: Console) -> None:
    for p in result.peaks:
        console.print(f"{p.image}: highest face probability {p.probability:.4f}, window centred at "
                      f"(row {p.centre[0]:.0f}, column {p.centre[1]:.0f}) of the original image")
    console.print(equivariance_table(result.profile, tol=TOL))
    origins = dict(zip((layer.name for layer in result.profile.layers), result.profile.origins(TOL), strict=True))
    first, inner = result.profile.first_break(TOL), result.profile.first_break(TOL, interior=True)
    console.print(f"first break: {first.name} ({first.kind}, {origins[first.name]}); first break in the interior: "
                  f"{inner.name} ({inner.kind}, {origins[inner.name]})")
    console.print(f"EQ-T of the face-probability map: {result.profile.output_eq_t_db:.1f} dB over all shifts in "
                  f"[-{MAX_SHIFT}, {MAX_SHIFT}]^2; {result.eq_t_even_db:.1f} dB over the even shifts, "
                  f"{result.eq_t_odd_db:.1f} dB over the odd ones")


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    result = run()
    console = Console(width=140)
    print_result(result, console)
    console.print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
