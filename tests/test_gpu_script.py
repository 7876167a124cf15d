"""benchmarks/gpu.sh, the prepared GPU check: its list of CUDA tests is complete and every id in it
exists; without CUDA it stops with exit 3 and says why; bench_gpu.py runs its table on the CPU."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def listed() -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT), "--list-tests"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def cuda_tests_in_suite() -> set[str]:
    """``path::name`` of every test function skipped where ``not torch.cuda.is_available()``."""
    found = set()
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                    "skipif" in ast.unparse(d) and "not torch.cuda.is_available()" in ast.unparse(d)
                    for d in node.decorator_list):
                found.add(f"{path.relative_to(ROOT).as_posix()}::{node.name}")
    return found


def test_every_cuda_test_of_the_suite_is_run_by_the_script():
    suite = cuda_tests_in_suite()
    assert len(suite) >= 5  # the scan itself finds them (training, invariance, engine, distributed, study)
    assert set(listed()) == suite


def test_every_listed_id_collects():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *listed()],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    collected = [line for line in out.stdout.splitlines() if "::" in line]
    assert len(collected) == len(listed())


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine the script runs for real")
def test_without_cuda_the_script_stops_with_exit_3_and_says_why(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 3
    assert "no CUDA device" in out.stderr
    assert not any(tmp_path.iterdir())  # nothing measured, nothing written


def test_bench_gpu_prints_its_table_on_the_cpu():
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--images", "16",
               "--steps", "1", "--repeats", "1", "--train-models", "maxpool_gap,aps_gap"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                         timeout=600)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert {"invariance,", "equivariance,", "maxpool_gap", "aps_gap"} <= rows
    ratios = [float(line.split()[-1]) for line in out.stdout.splitlines() if line.startswith(("invariance,",
                                                                                             "equivariance,"))]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
