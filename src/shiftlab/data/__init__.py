"""Real image data, offline, and translated (canvas) variants of it.

Loaders return an :class:`ImageDataset` (float32 images in ``[0, 1]``, int64 labels); use
:func:`load` with a name from :func:`names`. :mod:`shiftlab.data.canvas` places objects on a
larger zero canvas at centred, random or all positions; :mod:`shiftlab.data.scenes` builds
segmentation scenes (objects apart on a canvas, per-pixel labels).
"""

from shiftlab.data.canvas import (
    Canvas,
    GridBatch,
    canvas_size_for,
    centre_position,
    grid_offsets,
    iter_grid,
    max_shift,
    place_grid,
    place_on_canvas,
    random_offsets,
    random_translate,
    translate,
)
from shiftlab.data.cifar import load_cifar10
from shiftlab.data.dataset import ImageDataset
from shiftlab.data.digits import load_digits
from shiftlab.data.fashion_mnist import load_fashion_mnist
from shiftlab.data.folder import load_image_folder
from shiftlab.data.idx import IdxFormatError, load_idx, read_idx
from shiftlab.data.mnist5k import load_mnist_5k
from shiftlab.data.registry import load, names
from shiftlab.data.scenes import SceneSet, load_scenes, make_scenes

__all__ = [
    "Canvas",
    "GridBatch",
    "IdxFormatError",
    "ImageDataset",
    "SceneSet",
    "canvas_size_for",
    "centre_position",
    "grid_offsets",
    "iter_grid",
    "load",
    "load_cifar10",
    "load_digits",
    "load_fashion_mnist",
    "load_idx",
    "load_image_folder",
    "load_mnist_5k",
    "load_scenes",
    "make_scenes",
    "max_shift",
    "names",
    "place_grid",
    "place_on_canvas",
    "random_offsets",
    "random_translate",
    "read_idx",
    "translate",
]
