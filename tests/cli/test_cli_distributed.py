"""``torchrun --nproc_per_node=2 -m shiftlab ...`` (real torchrun, real gloo processes;
docs/scaling.md) against one process: the same study results and the same measurement, rank 0
alone prints and writes the report, a resume redoes only the missing run, an error on rank 1 is
reported with its rank; a broken launch environment is a one-line error."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from cli_helpers import ZERO

from shiftlab.cli.main import main
from shiftlab.study.config import StudyConfig
from shiftlab.study.job import record_paths
from shiftlab.study.results import load_results
from shiftlab.study.runner import jobs_of
from shiftlab.study.sharding import assign, job_cost

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "shiftlab"]
STUDY = ["study", "--quick", "--data", "digits", "--models", "strided_gap,maxpool_fc", "--conditions", "centred",
         "--seeds", "2", "--max-epochs", "1", "--n-eval", "8", "--width", "4"]
CONFIG = StudyConfig.preset("quick", data="digits", models=("strided_gap", "maxpool_fc"), conditions=("centred",),
                            seeds=2, max_epochs=1, n_eval=8, width=4)


def shiftlab(*argv: str, ranks: bool = True) -> subprocess.CompletedProcess:
    """``shiftlab ARGV`` under ``torchrun --nproc_per_node=2`` (or ``python -m shiftlab``), one torch thread a process."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    command = (TORCHRUN if ranks else [sys.executable, "-m", "shiftlab"]) + list(argv)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env={**env, "OMP_NUM_THREADS": "1", "COLUMNS": "100"})


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    assert main([*STUDY, "--workers", "1", "--no-report", "--out", str(out), "--resume"]) == 0
    return load_results(out).measurements()


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    return out, shiftlab(*STUDY, "--out", str(out), "--resume")


def test_a_torchrun_study_gives_the_one_process_results_and_rank0_alone_reports(one, two):
    out, done = two
    assert done.returncode == 0, done.stderr
    results = load_results(out)
    assert results.measurements() == one
    assert results.meta.ranks == 2 and results.meta.workers == 2  # one worker a rank on 2 cores
    assert done.stdout.count("4 runs in") == 1 and "with 2 workers on 2 ranks" in done.stdout
    assert done.stdout.count("report: ") == 1 and (out / "report.html").is_file()
    assert "error" not in done.stderr


def test_a_torchrun_resume_redoes_only_the_removed_run(one, two, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two[0], out)
    removed = jobs_of(CONFIG)[0].key
    for path in record_paths(out, removed):
        path.unlink()
    # every other run's files stay as they were (the removed run's per-shift bits are written again with it)
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if not p.name.startswith(f"{removed}.")}
    done = shiftlab(*STUDY, "--no-report", "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir() if p.name in kept} == kept
    assert record_paths(out, removed)[0].is_file()
    results = load_results(out)
    assert results.measurements() == one and results.meta.sessions == 2


def test_an_error_on_rank_1_is_reported_with_its_rank_and_stops_both(two, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(two[0], out)
    todo = [job for job in jobs_of(CONFIG) if job.model == "strided_gap"]
    canvas = tuple(load_results(out).meta.canvas_size)
    shares = assign([job_cost(CONFIG, job, canvas) for job in todo], 2)
    on_rank1 = todo[shares[1][0]]
    for job in todo:
        for path in record_paths(out, job.key):
            path.unlink()
    record_paths(out, on_rank1.key)[1].mkdir()  # rank 1 cannot write this run's per-image file
    done = shiftlab(*STUDY, "--no-report", "--out", str(out), "--resume")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("shiftlab study: error")]
    assert len(errors) == 1 and errors[0].startswith("shiftlab study: error: rank 1: [Errno 21] Is a directory")
    assert f"{on_rank1.key}.npz" in errors[0]


def _numbers_agree(a: object, b: object) -> bool:
    """Equal JSON, floats to 1e-6 relative (a float sum over two shards adds in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_numbers_agree(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_numbers_agree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def test_torchrun_measure_prints_and_writes_what_one_process_does(tmp_path):
    args = ["measure", ZERO, "--input-shape", "1,28,28", "-n", "9", "--shifts", "1", "--json"]
    one = shiftlab(*args, str(tmp_path / "one.json"), ranks=False)
    two = shiftlab(*args, str(tmp_path / "two.json"))
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert two.stdout.replace("two.json", "one.json") == one.stdout  # rank 0 alone prints, the same tables
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("one.json", "two.json"))
    assert a["invariance"]["n_images"] == b["invariance"]["n_images"] == 9
    assert _numbers_agree(a, b)


def test_a_broken_launch_environment_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    assert main(["study", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shiftlab study: error: WORLD_SIZE=2 is set but RANK") and "torchrun" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["measure", ZERO, "--input-shape", "1,8,8"]) == 2
    assert "WORLD_SIZE='two' in the environment is not an integer" in capsys.readouterr().err
