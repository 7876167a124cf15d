"""Memory of an ONNX model's per-layer profile (``docs/onnx.md``, "Memory"): the peak resident set of
``shiftlab.equivariance`` on PP-OCRv4's text detector (``rapidocr-onnxruntime``, 329 layer maps) at
160 x 160, for several ``maps_at_once``, against one bare ``session.run`` of one group of maps.

Usage: python benchmarks/bench_onnx_memory.py [--images 8 --size 160 --maps 16,32,64,all]

Every configuration runs in a fresh Python (the parent's resident set would carry the others'
memory): the child imports everything and makes the images (the *setup*), then makes the call
and reports its peak resident set (``ru_maxrss``) and how far the call raised it over the setup
(*grew*). The profile measures ``--images`` images under the 25 circular shifts of ``[-2, 2]^2``
in passes of 64 images (the default batch: 8 images and 7 shifts of each); ``all`` fetches every
map from one run, as shiftlab did before pieces. The bare run is one ``session.run`` of the
piece whose maps and inputs take the most bytes, on a batch of 64 images, its inputs made
beforehand (in the setup), through a session made as the profile makes it (no layout
optimizations, no arena). ``ratio`` is the profile's growth over the bare run's (target: at
most 1.5). One thread.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys

#: Images in one pass of the profile (its default batch_size).
PASS = 64

CHILD = r"""
import json, resource, sys, warnings
import numpy as np
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
import onnxruntime
import shiftlab as sl
from shiftlab.gallery.onnx_models import text_detector
from shiftlab.measure.onnx_graph import segment_model, with_outputs
from shiftlab.measure.onnx_runner import OnnxRunner
job = json.loads(sys.argv[1])
path = str(text_detector().path)
x = torch.rand(job["images"], 3, job["size"], job["size"], generator=torch.Generator().manual_seed(0)) * 2 - 1
if job["what"] == "bare":
    runner = OnnxRunner(path, maps_at_once=job["maps"])
    from shiftlab.measure.onnx_graph import segments
    piece = segments(runner.graph, job["maps"])[job["piece"]]
    batch = np.ascontiguousarray(torch.rand(job["batch"], 3, job["size"], job["size"]).numpy() * 2 - 1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    made = [name for name in piece.inputs if name != runner.graph.input.name]
    feeds = {runner.graph.input.name: batch} if runner.graph.input.name in piece.inputs else {}
    if made:  # the piece's inputs, from one run of the graph that outputs them (then let go)
        whole = onnxruntime.InferenceSession(with_outputs(runner.graph.model, made), options)
        feeds.update(zip(made, whole.run(made, {runner.graph.input.name: batch})))
        del whole
    import onnx
    types = {name: (onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.ndim) for name, v in feeds.items()}
    session = runner._new_session(segment_model(runner.graph, piece, types), piece=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = session.run(list(piece.outputs), feeds)
else:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sl.equivariance(path, x, shifts=2, batch_size=job["batch"], maps_at_once=job["maps"])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak": peak * 1024, "grew": (peak - before) * 1024}))
"""


def child(job: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1200)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_piece(maps: int, size: int) -> tuple[int, int, float]:
    """``(index, number of pieces, MB)`` of the piece whose outputs and inputs take the most bytes for
    a batch of :data:`PASS` images of ``size x size`` (ONNX shape inference with that input shape)."""
    import onnx

    from shiftlab.gallery.onnx_models import text_detector
    from shiftlab.measure.onnx_graph import read_graph, segments

    model = onnx.load(str(text_detector().path))
    graph = read_graph(model)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for dim, value in zip(fixed.graph.input[0].type.tensor_type.shape.dim, (PASS, 3, size, size), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True).graph
    nbytes = {v.name: 4 * math.prod(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in [*inferred.value_info, *inferred.output, *inferred.input]}
    pieces = segments(graph, maps)
    sizes = [sum(nbytes.get(name, 0) for name in (*piece.inputs, *piece.outputs)) for piece in pieces]
    best = max(range(len(pieces)), key=sizes.__getitem__)
    return best, len(pieces), sizes[best] / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images measured (default 8: one block of 8 images)")
    parser.add_argument("--size", type=int, default=160, help="image height and width (default 160)")
    parser.add_argument("--maps", default="16,32,64,all",
                        help="maps_at_once values, 'all' for one run (default 16,32,64,all)")
    args = parser.parse_args()
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        print("skipped: the text detector needs pip install --no-deps rapidocr-onnxruntime")
        return
    print(f"PP-OCRv4 text detector, {args.images} images of 3x{args.size}x{args.size}, 25 circular shifts, passes of "
          f"{PASS} images; one thread; {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'maps_at_once':>12} {'pieces':>6} | {'profile peak':>12} {'grew':>8} | {'bare run of piece':>17} "
          f"{'its maps':>8} {'grew':>8} | {'ratio':>5}")
    for text in args.maps.split(","):
        maps = 10**9 if text == "all" else int(text)
        piece, n_pieces, mb = largest_piece(maps, args.size)
        prof = child({"what": "profile", "maps": maps, "images": args.images, "size": args.size, "batch": PASS})
        bare = child({"what": "bare", "maps": maps, "piece": piece, "images": 1, "size": args.size, "batch": PASS})
        print(f"{text:>12} {n_pieces:>6} | {prof['peak'] / 2**20:>9.0f} MB {prof['grew'] / 2**20:>5.0f} MB | "
              f"{piece:>17} {mb:>5.0f} MB {bare['grew'] / 2**20:>5.0f} MB | {prof['grew'] / bare['grew']:>5.2f}",
              flush=True)


if __name__ == "__main__":
    main()
