"""``shiftlab measure``: invariance and per-layer equivariance of a model (a torch module, a study
checkpoint or an ONNX file), as tables and JSON."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shiftlab.cli.model_loading import load_model, load_onnx_model
from shiftlab.cli.progress import progress_bar
from shiftlab.cli.tables import equivariance_table, invariance_table, print_unabridged
from shiftlab.data import Canvas, load
from shiftlab.data.npy import load_npy
from shiftlab.io import write_json_atomic
from shiftlab.measure.equivariance import equivariance
from shiftlab.measure.invariance import invariance
from shiftlab.measure.onnx_runner import MAPS_AT_ONCE, is_onnx_model
from shiftlab.measure.shifts import MODES
from shiftlab.models import MODELS
from shiftlab.segmentation import SegmentationShifts, segmentation_shifts
from shiftlab.study.checkpoints import is_study_checkpoint, load_study_model
from shiftlab.weights import load_weights

__all__ = ["add_parser", "explain_model_error", "run"]

EPILOG = """\
MODEL is one of
  path/to/file.py:factory    a function (or class) in a Python file that returns an nn.Module; the
                             file's folder is on sys.path while it loads, so it may import modules beside it
  module.path:callable       the same from an importable module (installed, or in the current
                             directory): shiftlab.models:resnet18, torchvision.models:resnet18
  NAME                       a model of shiftlab.models (docs/models.md; random weights unless --weights):
                             {names}
  model.onnx                 an ONNX file, run by onnxruntime
  RUN_DIR/checkpoints/KEY    a model trained by shiftlab study
--model-kwargs '{"num_classes": 10}' passes keyword arguments to the factory, and --weights FILE loads
a state dict (torch.save(model.state_dict(), FILE)) into what it returns.

examples:
  shiftlab measure examples/cnn.py:maxpool_cnn --input-shape 1,28,28
  shiftlab measure resnet18 --input-shape 3,64,64 --model-kwargs '{"num_classes": 10}'
  shiftlab measure shiftlab.models:resnet50 --input-shape 3,224,224 -n 8 --weights resnet50.pth
  shiftlab measure model.onnx --images batch.npy                         # an ONNX file, run by onnxruntime
  shiftlab measure examples/cnn.py:maxpool_cnn --data mnist-5k          # real digits, with accuracy
  shiftlab measure runs/study/checkpoints/strided_gap__centred__seed0 --data mnist-5k --mode zeros
  shiftlab measure examples/cnn.py:maxpool_cnn_circular --input-shape 1,28,28 --shifts 3 --json runs/measure.json
  shiftlab measure my_model.py:build --images batch.npy --weights model.pt
  shiftlab measure my_unet.py:build --images scenes.npy --masks masks.npy --mode zeros   # a segmentation network

Errors are relative L2: ||f(T_d x) - T_d' f(x)|| / ||f(x)||, d' = d / stride of the layer.
'aligned' shifts are multiples of the layer's stride (compared with an exact shift), 'unaligned'
ones are compared with the band-limited fractional shift (an ideal alias-free layer). 'interior'
masks the border band of width = receptive-field radius. Full >> interior: padding/boundary;
unaligned interior >> aligned interior: aliasing from the stride.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "measure",
        help="invariance and per-layer equivariance of a PyTorch or ONNX model",
        description="Measure how a model's predictions and every layer's feature maps respond to shifts of the input.",
        epilog=EPILOG.replace("{names}", ", ".join(MODELS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="path/to/file.py:factory or module.path:callable (returning an "
                   "nn.Module), a registered model name (resnet18, ...), an ONNX file model.onnx (run with onnxruntime; "
                   "its layers are the graph's 4-D maps), or a study checkpoint RUN_DIR/checkpoints/MODEL__CONDITION__seedN; "
                   "see below")
    p.add_argument("--model-kwargs", type=json_object, default=None, metavar="JSON",
                   help="keyword arguments of the model's factory, a JSON object, e.g. '{\"num_classes\": 10}'")
    p.add_argument("--input-shape", help="C,H,W of random images (when no --images is given), e.g. 1,28,28")
    p.add_argument("--images", help="a .npy or .pt tensor [N, C, H, W] (or [N, H, W]) of images to measure on; "
                   "float values are used as they are, integer values must lie in 0..255 and are divided by 255")
    p.add_argument("--data", help="measure on the test split of a dataset (mnist-5k, fashion-mnist, digits, idx, cifar10, "
                   "folder), with accuracy; a study model sees it centred on its canvas")
    p.add_argument("--data-root", help="directory of the dataset files, where the dataset needs one")
    p.add_argument("--weights", help="a state_dict file to load into the model a factory or name builds (read with "
                   "torch.load(weights_only=True) onto the CPU; every key and shape must match)")
    p.add_argument("-n", "--num-images", type=positive_int, default=64,
                   help="number of images (random, or the first N of --images); default 64")
    p.add_argument("--shifts", type=int, default=2, help="measure every shift in [-m, m]^2; default 2")
    p.add_argument("--mode", choices=[m for m in MODES], default="circular", help="how images are shifted; default circular")
    p.add_argument("--tol", type=float, default=1e-4, help="error above which a layer counts as broken; default 1e-4")
    p.add_argument("--batch-size", type=batch_size_arg, default=128,
                   help="images per forward pass, or 'auto' (from the free memory); default 128")
    p.add_argument("--device", default="auto", help="where to run: auto (CUDA, then MPS, then CPU; an ONNX model "
                   "uses CUDA with onnxruntime-gpu only), cpu, cuda, cuda:N or mps; default auto")
    p.add_argument("--certify", choices=["auto", "yes", "no"], default="auto",
                   help="polyphase certificate for circular shifts of a global-pool model: one pass per residue "
                        "modulo the total stride when its premise holds on the data (auto), required (yes) or "
                        "never (no); default auto")
    p.add_argument("--maps-at-once", type=positive_int, default=MAPS_AT_ONCE, metavar="M",
                   help=f"an ONNX model's layer maps held in memory at once by the per-layer profile (its graph runs in "
                   f"pieces of at most M maps; docs/onnx.md, 'Memory'); lower it if the profile runs out of memory; "
                   f"default {MAPS_AT_ONCE}; a PyTorch model ignores it")
    p.add_argument("--masks", help="a .npy or .pt tensor [N, H, W] of per-pixel classes (int) for --images: the model "
                   "is a segmentation network, also measured for agreement with its own shifted prediction (ASSC, "
                   "object agreement), EQ-T and mIoU by shift distance (docs/definitions.md, 'Segmentation "
                   "consistency'); --mode zeros or circular")
    p.add_argument("--seed", type=int, default=0, help="seed of the random images; default 0")
    p.add_argument("--json", dest="json_path", help="also write all results to this JSON file")
    p.set_defaults(run=run)


def json_object(text: str) -> dict[str, Any]:
    """``--model-kwargs``: a JSON object (its keys are the factory's keyword arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}; give an object such as "
                                         "'{\"num_classes\": 10}' (keys and strings in double quotes)") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of keyword arguments such as '{{\"num_classes\": 10}}', "
                                         f"got a JSON {type(value).__name__}: {text!r}")
    return value


def positive_int(text: str) -> int:
    """``-n``: a positive integer (issue 21, case 14: ``-n -3`` measured 7 of 10 images)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def batch_size_arg(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}")
    return value


#: ``--images`` rule for integer arrays: values 0..255, divided by 255 (float arrays are used as they are).
INTEGER_RANGE = (0, 255)
#: --certify -> the `certify` argument of :func:`shiftlab.invariance`.
_CERTIFY: dict[str, bool | str] = {"auto": "auto", "yes": True, "no": False}


def _read_tensor(p: Path, what: str) -> object:
    """What the ``.npy`` / ``.pt`` file ``p`` given as ``--{what}`` holds (a tensor for a ``.npy``; checked by the
    caller); ``FileNotFoundError`` / ``ValueError`` with the way to save it for a missing, misnamed or damaged file."""
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} does not exist")
    if p.suffix not in (".npy", ".pt", ".pth"):
        raise ValueError(f"--{what} must be a .npy or .pt file, got {p.name}")
    try:
        return (torch.from_numpy(load_npy(p)) if p.suffix == ".npy"
                else torch.load(p, map_location="cpu", weights_only=True))
    except Exception as err:  # numpy and torch raise several types for a damaged file
        raise ValueError(f"cannot read {what} from {p}: {type(err).__name__}: {err}; save them with "
                         "np.save(path, array) or torch.save(tensor, path)") from err


def _read_masks(path: str, images: torch.Tensor) -> torch.Tensor:
    """The first ``N`` masks of a ``.npy`` / ``.pt`` file for ``images`` ``[N, C, H, W]``: int64 ``[N, H, W]``."""
    p = Path(path)
    data = _read_tensor(p, "masks")
    n, hw = images.shape[0], tuple(images.shape[-2:])
    if not isinstance(data, torch.Tensor) or data.dim() != 3 or data.is_floating_point() or data.is_complex():
        what = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"{p} must hold integer class indices [N, H, W], got {what}"
                         + (f" {data.dtype}" if isinstance(data, torch.Tensor) else ""))
    if data.shape[0] < n or tuple(data.shape[1:]) != hw:
        raise ValueError(f"{p} holds masks {tuple(data.shape)}; the {n} images of {hw[0]}x{hw[1]} need [{n}, {hw[0]}, "
                         f"{hw[1]}] (one mask per image, in the same order)")
    return data[:n].to(torch.int64)


def _masks(args: argparse.Namespace, model: torch.nn.Module | str, images: torch.Tensor) -> torch.Tensor | None:
    """The ``--masks`` for ``images`` (None without the option); ``ValueError`` when they cannot be used."""
    if not args.masks:
        return None
    if not args.images:
        raise ValueError("--masks needs --images (the scenes the masks label)")
    if not isinstance(model, torch.nn.Module):
        raise ValueError("--masks measures a PyTorch segmentation network; an ONNX model is measured without masks")
    return _read_masks(args.masks, images)


def _segmentation(console: Console, args: argparse.Namespace, model: torch.nn.Module | str, images: torch.Tensor,
                  masks: torch.Tensor) -> SegmentationShifts:
    """Measure and print a segmentation network's consistency under every shift of ``[-m, m]^2``, by distance."""
    assert isinstance(model, torch.nn.Module)  # _masks refused an ONNX model
    m = args.shifts
    shifts = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    with progress_bar("segmentation consistency", console):
        seg = segmentation_shifts(model, images, masks, shifts, mode=args.mode, batch_size=args.batch_size)
    table = Table(title=f"Segmentation consistency ({seg.mode} shifts, {seg.n_images} images; mIoU unshifted "
                        f"{seg.miou:.3f}, mASSC {seg.massc:.4f})")
    for column in ("distance", "shifts", "ASSC", "object agreement", "mIoU", "EQ-T (dB, worst)"):
        table.add_column(column, justify="right")
    objects = seg.object_agreement_by_shift
    for dist in range(1, m + 1):
        idx = [i for i, (dy, dx) in enumerate(seg.shifts) if max(abs(dy), abs(dx)) == dist]
        agreement, object_agreement, miou = (sum(values[i] for i in idx) / len(idx)
                                             for values in (seg.agreement_by_shift, objects, seg.miou_by_shift))
        worst = min(seg.eq_t_db_by_shift[i] for i in idx)
        table.add_row(str(dist), str(len(idx)), f"{agreement:.4f}", f"{object_agreement:.4f}", f"{miou:.3f}",
                      "inf" if math.isinf(worst) and worst > 0 else f"{worst:.1f}")
    console.print(table)
    return seg


def _read_images(path: str, n: int) -> torch.Tensor:
    """The first ``n`` images of a ``.npy`` / ``.pt`` file, as float ``[N, C, H, W]``.

    ``[N, H, W]`` gets a channel axis. Integer arrays (any integer dtype) must hold values in
    0..255 and are divided by 255; float arrays are used as they are; booleans become 0.0 / 1.0.
    A channels-last ``[N, H, W, C]`` array is refused with the transpose that fixes it.
    """
    p = Path(path)
    data = _read_tensor(p, "images")
    if not isinstance(data, torch.Tensor):
        raise ValueError(f"{p} must hold a single tensor [N, C, H, W], got {type(data).__name__}")
    shape = tuple(data.shape)
    if data.dim() not in (3, 4):
        raise ValueError(f"{p} holds an array of shape {shape}; --images needs [N, C, H, W] or [N, H, W]")
    if data.dim() == 4 and _looks_channels_last(shape):
        raise ValueError(f"{p} holds an array of shape {shape}, which looks channels-last (N, H, W, C); --images needs "
                         f"(N, C, H, W) = {(shape[0], shape[3], shape[1], shape[2])}: save it transposed, "
                         "np.save(path, a.transpose(0, 3, 1, 2)) (torch: x.permute(0, 3, 1, 2))")
    if data.dim() == 3:
        data = data.unsqueeze(1)
    data = data[:n]
    if data.numel() == 0:
        raise ValueError(f"-n must be at least 1, got {n}" if n < 1 else f"{p} holds no images (shape {shape})")
    if data.dtype == torch.bool:
        return data.float()
    if not data.is_floating_point():
        if data.is_complex():
            raise ValueError(f"{p} holds complex numbers ({data.dtype}); --images needs real-valued images")
        dtype = str(data.dtype).replace("torch.", "")
        data = data.to(torch.int64)  # every integer dtype alike (torch has no min/max of uint16, uint32)
        low, high = int(data.min()), int(data.max())
        if low < INTEGER_RANGE[0] or high > INTEGER_RANGE[1]:
            raise ValueError(f"{p} holds integers ({dtype}) from {low} to {high}; "
                             "integer images must lie in 0..255 (they are divided by 255): rescale them, or save "
                             "floats, which are used as they are")
        data = data.float() / 255.0
    return data


def _looks_channels_last(shape: tuple[int, ...]) -> bool:
    """``(N, H, W, C)`` with a typical channel count last and an image-sized axis first."""
    return shape[3] in (1, 2, 3, 4) and shape[1] > 4 and shape[2] > 4


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input-shape must be C,H,W with positive integers, e.g. 1,28,28; got {text!r}")
    if shape[2] in (1, 2, 3, 4) and shape[0] > 4 and shape[1] > 4:
        raise ValueError(f"--input-shape {text} looks like H,W,C; it is C,H,W: "
                         f"--input-shape {shape[2]},{shape[0]},{shape[1]}")
    return shape


_CONV_CHANNELS = re.compile(r"weight of size \[(?P<out>\d+), (?P<per_group>\d+)[^\]]*\], expected input\[\d+, (?P<got>\d+)"
                            r"[^\]]*\] to have (?P<want>\d+) channels")
_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \(\d+x(?P<got>\d+) and (?P<want>\d+)x\d+\)")
#: The CPU allocator's words for an allocation that failed (CUDA's are "out of memory").
_CPU_OOM = re.compile(r"DefaultCPUAllocator: (can't allocate memory|not enough memory)|Cannot allocate memory")
_BATCH = re.compile(r"(expected )?input\[\d+, ")  # a leading batch size: internal, not the user's


def _channels(n: int) -> str:
    return f"{n} channel" + ("" if n == 1 else "s")


def explain_model_error(err: RuntimeError) -> str:
    """One line for an error raised inside the measured model (a forward pass), for ``shiftlab measure``.

    A channel mismatch says how many channels the model expects and the images have; a fully
    connected layer that does not fit says so; the batch size (internal) is never shown.
    """
    text = " ".join(str(err).split())
    conv = _CONV_CHANNELS.search(text)
    if conv:
        want, got = int(conv["want"]), int(conv["got"])
        return (f"the model expects {_channels(want)}, the images have {got}: give images with {_channels(want)} "
                f"(--input-shape {want},H,W, or --images / --data with {_channels(want)})")
    matmul = _MATMUL.search(text)
    if matmul:
        return (f"the model failed: a fully connected layer expects {matmul['want']} features and got "
                f"{matmul['got']}: the image size does not fit the model; check that the images "
                "(--input-shape, --images, --data) have the size the model was built for")
    if "out of memory" in text.lower():
        return f"out of memory in the model's forward pass ({text}); use a smaller --batch-size, or --device cpu"
    if _CPU_OOM.search(text) or isinstance(err, MemoryError):
        return (f"out of memory in the model's forward pass on the CPU ({text or 'MemoryError'}); use a smaller "
                "--batch-size (or fewer, smaller images)")
    text = _BATCH.sub(lambda m: (m[1] or "") + "input[N, ", text)
    return (f"the model failed: {text}; check that the images (--input-shape, --images, --data) fit the model "
            "(add --debug to see the traceback)")


def _images(args: argparse.Namespace, canvas: Canvas | None) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """Images ``[N, C, H, W]``, labels ``[N]`` or None, and a description of where they came from."""
    if args.data:
        data = load(args.data, args.data_root, split="test").head(args.num_images)
        images = canvas.centred(data.images) if canvas is not None else data.images
        where = f"{args.data} test split" + (f", centred on a {canvas.canvas_size} canvas" if canvas is not None else "")
        return images, data.labels, where
    if args.images:
        return _read_images(args.images, args.num_images), None, args.images
    if not args.input_shape:
        raise ValueError("give --input-shape C,H,W for random images, --images FILE, or --data NAME")
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.rand((args.num_images, *_parse_shape(args.input_shape)), generator=gen)
    return images, None, f"random uniform, seed {args.seed}"


def _model(args: argparse.Namespace) -> tuple[torch.nn.Module | str, Canvas | None, str]:
    """The model to measure (a module, or an ONNX file's path), the study canvas, and one line about it."""
    if is_onnx_model(args.model):  # a path ending in .onnx (docs/onnx.md)
        if args.weights or args.model_kwargs is not None:
            raise ValueError(f"an ONNX file holds its weights; {_FACTORY_ONLY}")
        graph = load_onnx_model(args.model)
        return args.model, None, (f"ONNX, {graph.parameters:,} weights, {len(graph.layers)} layer maps, "
                                  f"input {graph.input.describe()}")
    model, canvas = _torch_model(args)
    model.eval()
    return model, canvas, f"{sum(p.numel() for p in model.parameters()):,} parameters"


_FACTORY_ONLY = "--weights is for file.py:factory models, module:callable and model names, as is --model-kwargs"


def _torch_model(args: argparse.Namespace) -> tuple[torch.nn.Module, Canvas | None]:
    if is_study_checkpoint(args.model):
        if args.weights or args.model_kwargs is not None:
            raise ValueError(f"a study checkpoint holds its weights; {_FACTORY_ONLY}")
        found = load_study_model(args.model)
        return found.model, found.canvas
    model = load_model(args.model, args.model_kwargs)
    if args.weights:
        load_weights(model, args.weights)
    return model, None


def run(args: argparse.Namespace) -> int:
    console = Console()
    model, canvas, about = _model(args)
    images, labels, where = _images(args, canvas)
    masks = _masks(args, model, images)  # checked before any measurement
    console.print(f"[bold]{escape(args.model)}[/]: {escape(about)}, {images.shape[0]} images of {tuple(images.shape[1:])}")
    with progress_bar("per-layer equivariance", console) as update:
        eq = equivariance(model, images, shifts=args.shifts, mode=args.mode, batch_size=args.batch_size,
                          device=args.device, progress=update, maps_at_once=args.maps_at_once)
    inv = None
    if eq.output_eq_t_db is None:
        with progress_bar("invariance", console) as update:
            inv = invariance(model, images, labels, shifts=args.shifts, mode=args.mode, batch_size=args.batch_size,
                             device=args.device, certify=_CERTIFY[args.certify],
                             progress=update)
        console.print(invariance_table(inv))
    else:
        defined = not math.isnan(eq.output_eq_t_db)
        console.print(f"dense output: EQ-T = {eq.output_eq_t_text()}" + (" (higher is more equivariant)" if defined else ""))
        if eq.degenerate:
            console.print(Text("caution: " + eq.degenerate, style="bold yellow"))
    print_unabridged(console, equivariance_table(eq, args.tol))
    first = eq.first_break(args.tol)
    if first is None:
        console.print(f"No layer breaks equivariance above {args.tol:g}.")
    else:
        console.print(f"First layer to break equivariance (> {args.tol:g}): [bold]{escape(first.name)}[/] "
                      f"({escape(first.kind)}): {escape(first.diagnose(args.tol))}")
    if eq.skipped:
        skipped = ", ".join(f"{s.name} ({s.kind}, {s.output})" for s in eq.skipped)
        console.print(Text("Skipped (output is not a 4-D map): " + skipped))
    seg = _segmentation(console, args, model, images, masks) if masks is not None else None
    if args.json_path:
        payload = {
            "model": args.model,
            "weights": args.weights,
            "images": where,
            "invariance": inv.to_dict() if inv else None,
            "equivariance": eq.to_dict(),
            "segmentation": seg.to_dict() if seg else None,
        }
        write_json_atomic(args.json_path, payload)
        console.print(Text(f"wrote {args.json_path}"))
    return 0
