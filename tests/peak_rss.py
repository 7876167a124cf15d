"""Peak memory of calls, measured in a fresh Python: ``peak_rss(setup, calls)`` runs ``setup``
once, then runs each call in a forked child and reports how far the child's peak resident set
(``ru_maxrss``) rose above what it held when it started, and how the call ended.

The child runs under an address-space limit (``RLIMIT_AS``, 8 GiB by default), so that a call that
does not bound its memory fails with ``MemoryError`` instead of taking the machine's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

CHILD = r"""
import json, os, resource, signal, sys
job = json.loads(sys.stdin.read())
exec(job["setup"])
calls = job["calls"]
for call in calls:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        signal.alarm(job["call_timeout"])  # a call that hangs (a FIFO) is killed
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            eval(call)
            outcome = "ok"
        except BaseException as err:
            outcome = f"{type(err).__name__}: {err}"
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
        os.write(w, json.dumps({"call": call, "grew": grew, "outcome": outcome}).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        report = f.read()
    os.waitpid(pid, 0)
    print(report if report else json.dumps({"call": call, "grew": None, "outcome": "killed"}), flush=True)
"""


def peak_rss(setup: str, calls: list[str], *, timeout: float = 120, call_timeout: int = 30,
             address_space: int = 8 << 30) -> list[dict]:
    """For each expression in ``calls`` (evaluated after ``setup`` ran), a dict: ``grew`` (bytes
    the peak RSS rose during the call), ``outcome`` ("ok", "Type: message", or "killed" for a
    call still running after ``call_timeout`` seconds)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    job = json.dumps({"setup": setup, "calls": calls, "call_timeout": call_timeout})
    done = subprocess.run([sys.executable, "-c", CHILD], input=job, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
