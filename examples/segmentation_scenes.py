"""Draw examples of the segmentation scenes (shiftlab.data.scenes) for docs/segmentation.md.

Usage: python examples/segmentation_scenes.py [--out docs/images/segmentation_scenes.png]

Four training scenes of MNIST-5k digits and four of Fashion-MNIST items (64x64, 2-3 objects,
seed 0), each shown as the image and its mask (background black, one colour per class).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from shiftlab.data.scenes import load_scenes

#: Background black, then ten distinct colours (matplotlib's tab10) for the ten classes.
MASK_COLOURS = ListedColormap(["#000000", *matplotlib.colormaps["tab10"].colors])


def draw(out: Path) -> None:
    fig = Figure(figsize=(10.4, 3.3), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 8)
    for row, name in enumerate(("mnist-5k", "fashion-mnist")):
        scenes = load_scenes(name, "train", 4)
        for k in range(4):
            image_ax, mask_ax = axes[row, 2 * k], axes[row, 2 * k + 1]
            image_ax.imshow(scenes.images[k, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            mask_ax.imshow(scenes.masks[k].numpy(), cmap=MASK_COLOURS, vmin=0, vmax=10, interpolation="nearest")
            present = [scenes.classes[int(m)].split("/")[0].split()[0] for m in np.unique(scenes.masks[k].numpy()) if m > 0]
            image_ax.set_title(f"scene {k}", fontsize=8)
            mask_ax.set_title(", ".join(present), fontsize=7)
            if k == 0:
                image_ax.set_ylabel(name, fontsize=9)
            for ax in (image_ax, mask_ax):
                ax.set_xticks([])
                ax.set_yticks([])
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/segmentation_scenes.png"))
    draw(parser.parse_args().out)


if __name__ == "__main__":
    main()
