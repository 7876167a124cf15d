"""An image folder in torchvision's ``ImageFolder`` layout: ``root/<class_name>/<image file>``.

Classes are the sub-directories of ``root`` in sorted order (label ``k`` is the ``k``-th); images
are the files with a known image extension inside each, in sorted order, read with Pillow.
There is no official train/test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shiftlab.data.dataset import ImageDataset, index_labels, missing_data, select_split, to_unit_float

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
HOW_TO_GET = "Pass root= a directory laid out as root/<class_name>/<image>.png (one sub-directory per class)."
_PILLOW_MODES = {1: "L", 3: "RGB"}


def _image_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    classes: list[str] = []
    files: list[Path] = []
    labels: list[int] = []
    for class_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        images = sorted(path for path in class_dir.iterdir() if path.is_file() and path.suffix.lower() in EXTENSIONS)
        if images:
            files += images
            labels += [len(classes)] * len(images)
            classes.append(class_dir.name)
    return classes, files, labels


def _read_image(path: Path, channels: int, size: Sequence[int] | None) -> np.ndarray:
    """``path`` as uint8 ``[H, W, channels]`` (resized to ``size = (H, W)`` when given);
    ``ValueError`` naming the file when Pillow cannot decode it (truncated, damaged, not an image,
    a decompression bomb)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert(_PILLOW_MODES[channels])
            if size is not None:
                height, width = size
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    except Exception as error:  # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error, ...
        raise ValueError(f"{path}: cannot read this image ({type(error).__name__}: {error}); "
                         "replace or remove the file") from error


def load_image_folder(
    root: str | Path | None = None,
    split: str | None = None,
    *,
    channels: int = 3,
    size: Sequence[int] | None = None,
) -> ImageDataset:
    """Load every image under ``root/<class_name>/``.

    Class directories without images are skipped. Images are converted with Pillow to
    grayscale (``channels=1``, mode ``"L"``) or RGB (``channels=3``), whatever their own mode.

    Args:
        root: the folder (required).
        split: ``None``/``"all"`` (default), or ``"train"``/``"test"`` of the fixed split
            (see :func:`shiftlab.data.dataset.select_split`).
        channels: 1 or 3.
        size: ``(H, W)`` to resize every image to (bilinear); without it all images must
            already have the same size.

    Shape:
        - images: :math:`(N, C, H, W)` with :math:`C` = ``channels``, float32 in ``[0, 1]`` (values / 255)
        - labels: :math:`(N,)`, int64

    Raises:
        FileNotFoundError: if ``root`` is missing or holds no images in class sub-directories.
        ValueError: on mixed image sizes without ``size``, a bad ``channels``, or a file Pillow
            cannot decode (the message names it).
    """
    if channels not in _PILLOW_MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if root is None:
        raise missing_data("image folder", "no root given", HOW_TO_GET)
    root = Path(root)
    if not root.is_dir():
        raise missing_data(f"image folder {root}", "no such directory", HOW_TO_GET)
    classes, files, labels = _image_files(root)
    if not files:
        raise missing_data(f"images ({', '.join(EXTENSIONS)})", f"no class sub-directory of {root} holds any", HOW_TO_GET)
    arrays = [_read_image(path, channels, size) for path in files]
    sizes = [array.shape[:2] for array in arrays]
    odd = next((k for k, shape in enumerate(sizes) if shape != sizes[0]), None)
    if odd is not None:
        raise ValueError(
            f"images in {root} have different sizes ({files[0]}: {sizes[0]}, {files[odd]}: {sizes[odd]}, "
            "as (H, W)); pass size=(H, W) to resize them"
        )
    images = to_unit_float(np.stack(arrays).transpose(0, 3, 1, 2), 255)
    dataset = ImageDataset(images, index_labels(np.asarray(labels, dtype=np.int64)), classes, "folder", str(root))
    return select_split(dataset, split)
