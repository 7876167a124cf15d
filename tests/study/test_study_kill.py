"""A study killed with SIGKILL (no chance to clean up) at several points and resumed gives the
same results as an uninterrupted run, and leaves no temporary file behind (issue 11, item 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_study_runner import TINY

from shiftlab.study.config import StudyConfig
from shiftlab.study.runner import run_study

CONFIG = {**TINY, "conditions": ("centred",), "max_epochs": 3, "target_accuracy": 1.0}
RUN = """
import json, sys
from shiftlab.study.config import StudyConfig
from shiftlab.study.runner import run_study
run_study(StudyConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], resume=True, workers=1)
"""


def _kill_when(out: Path, ready, timeout: float = 120.0) -> bool:
    """Start (or resume) the study in a child process and SIGKILL it once ``ready(out, since)``
    (``since``: when the child started); False when the study finished first."""
    config = json.dumps(StudyConfig(**CONFIG).to_dict())
    since = time.time()
    child = subprocess.Popen([sys.executable, "-c", RUN, config, str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if ready(out, since):
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                return True
            time.sleep(0.02)
        return False
    finally:
        if child.poll() is None:
            child.kill()


def _newer(paths, since: float) -> int:
    """How many of ``paths`` were written after ``since``."""
    return sum(1 for p in paths if p.stat().st_mtime > since)


def mid_training(out: Path, since: float) -> bool:
    """An epoch of some job was checkpointed since the child started (it trains now)."""
    return _newer(out.glob("checkpoints/*/checkpoint.pt"), since) >= 1


def after_a_record(out: Path, since: float) -> bool:
    """A job finished (its record written) since the child started."""
    return _newer(out.glob("runs/*.json"), since) >= 1


def test_sigkill_at_three_points_then_resume_gives_the_uninterrupted_results(tmp_path):
    whole = run_study(StudyConfig(**CONFIG), tmp_path / "whole", workers=1)
    out = tmp_path / "killed"
    kills = sum(_kill_when(out, ready) for ready in (mid_training, after_a_record, mid_training))
    assert kills == 3, "the study finished before it could be killed three times: make CONFIG slower"
    (out / "runs" / ".strided_gap__centred__seed0.json.x1y2.tmp").write_text("{")  # as a kill mid-write leaves
    resumed = run_study(StudyConfig(**CONFIG), out, resume=True, workers=1)
    assert resumed.measurements() == whole.measurements()
    assert not list(out.rglob("*.tmp"))  # a killed writer's temporary files are removed on resume
    assert resumed.meta.sessions == kills + 1  # every killed session counted, with its time up to its last job
    assert resumed.meta.seconds > 0


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc/PID/task/*/children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def test_sigterm_to_the_command_alone_stops_its_workers_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    argv = ["study", "--data", "digits", "--models", "strided_gap,maxpool_fc", "--conditions", "centred", "--seeds", "2",
            "--max-epochs", "3", "--target-accuracy", "1.0", "--width", "4", "--n-train", "300", "--n-test", "100",
            "--n-eval", "12", "--workers", "2", "--no-report", "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-m", "shiftlab", *argv], stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline, workers = time.monotonic() + 120, []
        while child.poll() is None and time.monotonic() < deadline and not mid_training(out, 0):
            workers = _children(child.pid) or workers
            time.sleep(0.02)
        workers = _children(child.pid) or workers
        assert child.poll() is None and len(workers) >= 2, "the study finished (or never trained) before the signal"
        child.send_signal(signal.SIGTERM)  # the command alone, as `kill PID` or a scheduler does
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        for pid in (p for p in workers if _alive(p) and child.returncode != 143):  # a failed run leaves no orphans
            os.kill(pid, signal.SIGKILL)
    assert child.returncode == 143
    assert "shiftlab study: terminated (SIGTERM)" in err and "rerun with --resume" in err and "Traceback" not in err
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if _alive(p)], "worker processes outlived the command"
