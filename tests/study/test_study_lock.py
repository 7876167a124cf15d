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


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("DATA\n")
    return victim


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    victim = _victim(tmp_path)
    (out / ".lock").symlink_to(victim)
    with pytest.raises(OSError, match=rf"{out / '.lock'} is a symbolic link.*remove it"):
        with run_dir_lock(out):
            pass
    assert victim.read_text() == "DATA\n"
    with pytest.raises(OSError, match="is a symbolic link"):
        run_study(StudyConfig(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1), out,
                  resume=True)
    assert victim.read_text() == "DATA\n" and not (out / "config.json").exists()
    (out / ".lock").unlink()
    (out / ".lock").symlink_to(tmp_path / "nowhere")  # a dangling link: never created through
    with pytest.raises(OSError, match="is a symbolic link"):
        with run_dir_lock(out):
            pass
    assert not (tmp_path / "nowhere").exists()


def test_a_lock_that_is_not_a_regular_file_or_has_other_links_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    os.mkfifo(out / ".lock")
    with pytest.raises(OSError, match=rf"{out / '.lock'} is not a regular file \(a FIFO\).*remove it"):
        with run_dir_lock(out):
            pass
    (out / ".lock").unlink()
    victim = _victim(tmp_path)
    os.link(victim, out / ".lock")  # a hard link to a file outside the run directory
    with pytest.raises(OSError, match="has 2 hard links"):
        with run_dir_lock(out):
            pass
    assert victim.read_text() == "DATA\n"
    (out / ".lock").unlink()
    with run_dir_lock(out):  # the usual lock file, created by the lock
        assert (out / ".lock").read_text() == str(os.getpid())
