"""``shiftlab report`` on a full disk: one line and exit 2; report.html, results.json and the
figures as they were; no temporary file left (``docs/reliability.md``)."""

import subprocess
import sys


def snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_full_disk_while_writing_the_report_loses_nothing(run_dir, built_report, full_disk):
    before = snapshot(run_dir)
    assert any(p.name == "report.html" for p in before)
    done = subprocess.run([sys.executable, "-m", "shiftlab.cli.main", "report", str(run_dir)], capture_output=True,
                          text=True, preexec_fn=full_disk(20_000), timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shiftlab report: error: ") and "File too large" in lines[0], lines
    assert snapshot(run_dir) == before
