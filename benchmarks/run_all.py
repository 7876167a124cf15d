"""Run every benchmark of this folder, one after another, and print their tables.

Usage: python benchmarks/run_all.py [--quick]

Each ``bench_*.py`` runs in its own process with its default options (``--quick``: fewer images
and repeats where a benchmark has them), so one benchmark's memory and threads do not leak into
the next. ``bench_gpu.py`` exits 3 without CUDA and counts as skipped (``benchmarks/gpu.sh`` runs it
on a GPU machine). Run it on an otherwise idle machine: every ratio is measured side by side, but a
background load still adds noise.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Options of each benchmark under --quick.
QUICK = {"bench_measure.py": ["--images", "200", "--repeats", "2"], "bench_training.py": ["--steps", "10"],
         "bench_training_loop.py": ["--repeats", "2"], "bench_onnx_memory.py": ["--maps", "32"],
         "bench_downsample.py": ["--repeats", "5"], "bench_dense_max.py": ["--repeats", "3"],
         "bench_circular_pad.py": ["--steps", "5", "--repeats", "2"], "bench_onnx.py": ["--images", "50", "--repeats", "1"],
         "bench_distributed.py": ["--images", "200", "--repeats", "1"], "bench_study_distributed.py": ["--repeats", "1"]}


#: Exit status of a benchmark that needs a device this machine lacks (bench_gpu.py without CUDA): skipped, not failed.
NO_DEVICE = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats (a smoke test, noisier)")
    args = parser.parse_args()
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        extra = QUICK.get(script.name, []) if args.quick else []
        code = subprocess.call([sys.executable, str(script), *extra])
        print(f"({script.name}: {time.perf_counter() - start:.0f} s, exit {code}"
              f"{': skipped, no such device here' if code == NO_DEVICE else ''})", flush=True)
        if code and code != NO_DEVICE:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
