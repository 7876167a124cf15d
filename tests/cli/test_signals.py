"""Ctrl-C and SIGTERM stop every command (issue 21, case 5): ``shiftlab measure`` on an ONNX model
(inference runs where it can be interrupted: onnxruntime's terminate flag is set from the main
thread) and on a torch model, ``shiftlab report`` and ``shiftlab report --explorer``: exit 130 or
143 with one line, and the resume hint where there is one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shiftlab.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def loop_model(path: Path, trips: int = 10**12) -> Path:
    """A classifier ``[N, 1, 8, 8] -> [N, 2]`` whose graph holds a Loop of ``trips`` iterations."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto
    from onnx import helper as h

    scalar = [h.make_tensor_value_info("i", TensorProto.INT64, []), h.make_tensor_value_info("c", TensorProto.BOOL, []),
              h.make_tensor_value_info("v", TensorProto.FLOAT, [1])]
    body = h.make_graph([h.make_node("Identity", ["c"], ["c_out"]), h.make_node("Add", ["v", "zero"], ["v_out"])], "body",
                        scalar, [h.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                                 h.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
                        [h.make_tensor("zero", TensorProto.FLOAT, [1], [0.0])])
    nodes = [h.make_node("Loop", ["trips", "cond", "v0"], ["looped"], body=body),
             h.make_node("GlobalAveragePool", ["input"], ["g"]), h.make_node("Flatten", ["g"], ["f"]),
             h.make_node("Neg", ["f"], ["nf"]), h.make_node("Concat", ["f", "nf"], ["c"], axis=1),
             h.make_node("Add", ["c", "looped"], ["logits"])]
    graph = h.make_graph(nodes, "loop", [h.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
                         [h.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
                         [h.make_tensor("trips", TensorProto.INT64, [], [trips]),
                          h.make_tensor("cond", TensorProto.BOOL, [], [True]),
                          h.make_tensor("v0", TensorProto.FLOAT, [1], [0.0])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _default_sigint() -> None:
    """SIGINT as a terminal delivers it: a test run started in the background (``cmd &``) inherits
    SIGINT ignored, and Python then keeps it ignored instead of raising KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(argv: list[str], sig: signal.Signals, *, ready: str, after: float = 1.5) -> tuple[int, str, float]:
    """Start ``shiftlab ARGV``, wait for ``ready`` on stdout and ``after`` seconds more, send ``sig``:
    (exit code, stderr, seconds from the signal to the exit). Killed after 10 s (then the code is -9)."""
    child = subprocess.Popen([sys.executable, "-m", "shiftlab", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
                             preexec_fn=_default_sigint)
    try:
        seen = ""
        while ready not in seen:
            line = child.stdout.readline()  # type: ignore[union-attr]
            assert line, f"the command ended before {ready!r}: {child.stderr.read()}"  # type: ignore[union-attr]
            seen += line
        time.sleep(after)
        assert child.poll() is None, "the command finished before the signal"
        start = time.monotonic()
        child.send_signal(sig)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        return child.returncode, child.stderr.read(), time.monotonic() - start  # type: ignore[union-attr]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize(("sig", "code", "what"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                    (signal.SIGINT, 130, "interrupted")])
def test_measure_of_an_onnx_model_in_a_long_inference_stops_on_a_signal(tmp_path, sig, code, what):
    model = loop_model(tmp_path / "loop.onnx")  # 10^12 iterations: inference never ends by itself
    rc, err, seconds = stop(["measure", str(model), "--input-shape", "1,8,8", "-n", "2", "--shifts", "1"], sig,
                            ready="loop.onnx: ONNX")
    assert rc == code, err
    assert seconds < 5, seconds
    assert err.strip().splitlines() == [f"shiftlab measure: {what}"], err


SLOW = """
import torch
from torch import nn


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 2)

    def forward(self, x):
        for _ in range(10**9):  # a forward that never ends: many small ops
            x = x + 0
        return self.fc(x.flatten(1))


def build():
    return Slow()
"""


def test_measure_of_a_torch_model_in_a_long_forward_stops_on_sigterm(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW)
    rc, err, seconds = stop(["measure", f"{tmp_path / 'slow.py'}:build", "--input-shape", "1,8,8", "-n", "2",
                             "--shifts", "1"], signal.SIGTERM, ready="slow.py")
    assert rc == 143 and seconds < 5, (rc, seconds, err)
    assert err.strip().splitlines() == ["shiftlab measure: terminated (SIGTERM)"], err


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt in this process, as under a terminal, also when pytest runs
    in the background (``cmd &`` starts it with SIGINT ignored); restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _signalled(sig: signal.Signals):
    def command(*args, **kwargs):
        os.kill(os.getpid(), sig)  # delivered while the command runs
        time.sleep(30)
        raise AssertionError("the signal did not stop the command")
    return command


@pytest.mark.parametrize(("sig", "code", "what"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                    (signal.SIGINT, 130, "interrupted")])
def test_report_and_its_explorer_stop_on_a_signal_and_the_explorer_says_how_to_go_on(tmp_path, capsys, monkeypatch,
                                                                                       sigint_raises, sig, code, what):
    import shiftlab.cli.report as report_cli

    monkeypatch.setattr(report_cli, "build_report", _signalled(sig))
    assert main(["report", str(tmp_path)]) == code
    assert capsys.readouterr().err.strip().splitlines() == [f"shiftlab report: {what}"]
    monkeypatch.setattr(report_cli, "add_explorer", _signalled(sig))
    assert main(["report", str(tmp_path), "--explorer", "all"]) == code
    assert capsys.readouterr().err.strip().splitlines() == [
        f"shiftlab report: {what} (the explorer data of the runs finished so far is saved: rerun the command to "
        "compute the rest)"]
