"""A small study under ``torchrun --nproc_per_node=2`` against one process, side by side.

Usage: python benchmarks/bench_study_distributed.py [--repeats 2] [--ranks 2] [-- STUDY OPTIONS]

Three settings run the same study, each into a fresh run directory, round-robin for
``--repeats`` rounds (so load changes hit all settings alike):

- 1 process: ``python -m shiftlab study ... --workers 1`` (the jobs run in the process);
- 1 process x N workers: ``python -m shiftlab study ... --workers N`` (the single-machine way);
- torchrun N ranks: ``torchrun --standalone --nproc_per_node=N -m shiftlab study ... --workers 1``
  (one worker process per rank).

Each run is timed as a whole command (start-up, imports, data, jobs, analysis; no report) and by
the study's own wall time (``meta.seconds``: from the start of the jobs). The table shows the
median over rounds and its ratio to 1 process, and whether the results equal 1 process's
(everything but the wall times and ``meta``). Every process runs one torch thread.

Default study: MNIST-5k, ``strided_gap`` and ``maxpool_fc``, centred, 2 seeds, at most 3
epochs, 200 evaluation images (4 jobs; a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shiftlab.study.results import load_results

STUDY = ["--models", "strided_gap,maxpool_fc", "--conditions", "centred", "--seeds", "2", "--max-epochs", "3",
         "--n-eval", "200"]


def run(command: list[str], out: Path) -> tuple[float, float, dict]:
    """Run ``command`` (a study into ``out``); (command seconds, study seconds, measurements)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    results = load_results(out)
    return seconds, results.meta.seconds, results.measurements()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the settings (default 2)")
    parser.add_argument("--ranks", type=int, default=2, help="torchrun processes, and workers of the pool (default 2)")
    parser.add_argument("study", nargs="*", help="options of shiftlab study (after --); default: " + " ".join(STUDY))
    args = parser.parse_args()
    study = args.study or STUDY
    n = args.ranks
    settings = {
        "1 process": [sys.executable, "-m", "shiftlab", "study", *study, "--workers", "1"],
        f"1 process x {n} workers": [sys.executable, "-m", "shiftlab", "study", *study, "--workers", str(n)],
        f"torchrun {n} ranks x 1 worker": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                           f"--nproc_per_node={n}", "-m", "shiftlab", "study", *study, "--workers", "1"],
    }
    print(f"study: shiftlab study {' '.join(study)} --no-report; {platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores, {args.repeats} rounds", flush=True)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    same: dict[str, bool] = {name: True for name in settings}
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            for i, (name, command) in enumerate(settings.items()):
                out = Path(tmp) / f"r{round_}s{i}"
                whole, inside, numbers = run([*command, "--no-report", "--out", str(out)], out)
                reference = numbers if reference is None else reference
                same[name] &= numbers == reference
                times[name].append((whole, inside))
                print(f"  round {round_ + 1}, {name}: {whole:.1f} s (study {inside:.1f} s)", flush=True)
    base_whole = statistics.median(w for w, _ in times["1 process"])
    base_inside = statistics.median(s for _, s in times["1 process"])
    print(f"\n{'setting':<28} {'command s':>10} {'ratio':>6} {'study s':>8} {'ratio':>6}  results")
    for name, runs in times.items():
        whole, inside = statistics.median(w for w, _ in runs), statistics.median(s for _, s in runs)
        print(f"{name:<28} {whole:>10.1f} {whole / base_whole:>6.2f} {inside:>8.1f} {inside / base_inside:>6.2f}  "
              f"{'identical' if same[name] else 'DIFFERENT'}")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
