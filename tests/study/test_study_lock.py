"""One study per run directory: a second start refuses while the first runs; a killed study
leaves nothing locked (the operating system releases the lock with the process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from shiftlab.study.config import StudyConfig
from shiftlab.study.lock import RunDirLocked, run_dir_lock
from shiftlab.study.runner import run_study

HOLD = """
import sys, time
from pathlib import Path
from shiftlab.study.lock import run_dir_lock
with run_dir_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_study_on_a_running_directory_refuses_with_the_holders_pid(tmp_path):
    out = tmp_path / "run"
    with run_dir_lock(out):
        with pytest.raises(RunDirLocked, match=rf"in use by a running study \(pid {os.getpid()}\)"):
            run_study(StudyConfig(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1), out)
        assert not (out / "config.json").exists()  # the refused start wrote nothing
    with run_dir_lock(out):  # released on exit
        pass


def test_a_killed_holder_leaves_the_directory_free(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirLocked, match=f"pid {holder.pid}"):
            with run_dir_lock(out):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    start = time.perf_counter()
    with run_dir_lock(out):  # not stuck: the kernel released the dead process's lock
        assert time.perf_counter() - start < 1.0
