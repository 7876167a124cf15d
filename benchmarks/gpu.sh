#!/usr/bin/env bash
# The prepared GPU check (run it when a session is lent a CUDA machine; about 5 minutes on one GPU):
#   1. the CUDA tests (they skip on a machine without CUDA; listed below by node id, and
#      tests/test_gpu_script.py checks that every CUDA test of the suite is in the list),
#   2. benchmarks/bench_gpu.py: invariance and the per-layer profile against the bare forward
#      passes, training throughput of five zoo models at batch 64 and 256,
#   3. `shiftlab study --quick --device cuda`, timed,
# then one summary. Needs an environment where `import shiftlab` works with a CUDA build of torch
# (e.g. `pip install -c constraints.txt --no-deps -e .` beside the machine's own torch).
# Usage: bash benchmarks/gpu.sh [OUT_DIR]   (exit 3: no CUDA device; --list-tests: the CUDA tests' ids)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/shiftlab-gpu}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
CUDA_TESTS=(
  tests/training/test_training_loop.py::test_cuda_training_follows_the_cpu_run_to_float_rounding
  tests/measure/test_invariance.py::test_labels_on_the_gpu_are_compared_with_the_predictions_on_the_cpu
  tests/measure/test_distributed.py::test_nccl_group_gives_the_numbers_of_one_process
  tests/measure/test_engine.py::test_cuda_gives_the_cpu_predictions_and_leaves_the_model_on_the_cpu
  tests/study/test_study_runner.py::test_a_study_on_the_gpu_matches_the_cpu_study_to_rounding
)
if [ "${1:-}" = "--list-tests" ]; then printf '%s\n' "${CUDA_TESTS[@]}"; exit 0; fi
python - <<'PY' || exit $?
import sys
try:
    import torch, shiftlab  # noqa: F401
except ImportError as err:
    sys.exit(f"cannot import {err.name}: install shiftlab first (see the comment at the top of benchmarks/gpu.sh)")
if not torch.cuda.is_available():
    print("no CUDA device: nothing to check here (the CUDA tests skip on this machine)", file=sys.stderr)
    sys.exit(3)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
t0=$(date +%s)
python -m pytest -q -rs -p no:cacheprovider "${CUDA_TESTS[@]}" 2>&1 | tee "$out/tests.log"
tests_rc=${PIPESTATUS[0]}
t1=$(date +%s)
python benchmarks/bench_gpu.py --device cuda 2>&1 | tee "$out/bench.log"
bench_rc=${PIPESTATUS[0]}
t2=$(date +%s)
shiftlab study --quick --device cuda --out "$out/study-quick" 2>&1 | tail -25 | tee "$out/study.log"
study_rc=${PIPESTATUS[0]}
t3=$(date +%s)
echo
echo "== summary ($(head -1 "$out/device.txt"))"
echo "CUDA tests:            rc $tests_rc, $((t1 - t0)) s: $(tail -1 "$out/tests.log")"
echo "bench_gpu.py:          rc $bench_rc, $((t2 - t1)) s (table above)"
echo "study --quick on cuda: rc $study_rc, $((t3 - t2)) s"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ] && [ "$study_rc" = 0 ]
