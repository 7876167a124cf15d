"""The study's time-left estimate from the work left (``shiftlab.cli.progress.WorkLeft``), on synthetic
event sequences: no training."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console
from rich.progress import Progress

from shiftlab.cli.progress import STAGE_SHARES, TimeLeftColumn, WorkLeft, job_line, time_left
from shiftlab.cli.study import _Bars, job_stages, job_weights
from shiftlab.study.config import StudyConfig
from shiftlab.study.job import Job, record_paths
from shiftlab.study.runner import jobs_of


def test_time_left_is_the_work_left_at_the_rate_so_far():
    assert time_left(7.5, 2.5, 60.0) == pytest.approx(180.0)
    assert time_left(0.0, 2.5, 60.0) == 0.0
    assert time_left(5.0, 0.0, 60.0) is None  # no work done yet: no rate
    assert time_left(5.0, 1.0, 0.0) is None


def test_a_finished_job_gets_a_plain_line_in_a_log_and_none_on_a_terminal():
    log, terminal = Console(file=io.StringIO()), Console(file=io.StringIO(), force_terminal=True)
    for console in (log, terminal):
        job_line(console, "strided_gap__centred__seed1", 4, 9, 600.0, 750.0)
        job_line(console, "aps_gap__circular__seed0", 9, 9, 1350.0, 0.0)  # the last: nothing is left
        job_line(console, "[red]odd[/red]", 1, 9, 5.0, None)  # no rate yet; a key is not markup
    assert log.file.getvalue().splitlines() == [
        "[4/9] strided_gap__centred__seed1 done; 10.0 min elapsed, about 12.5 min left",
        "[9/9] aps_gap__circular__seed0 done; 22.5 min elapsed",
        "[1/9] [red]odd[/red] done; 5.0 s elapsed"]
    assert terminal.file.getvalue() == ""  # the live bars say it there


def simulate(jobs: list[tuple[str, float, int, int]], seconds_per_unit: float, budget: int, chunks: int = 2):
    """Run ``jobs`` one after another, as (key, weight, epochs trained, budget) at a constant rate; yield
    (time, event) with event ('progress', key, stage, done, total) or ('finish', key)."""
    share = {s: STAGE_SHARES[s] / (STAGE_SHARES["train"] + STAGE_SHARES["measure"]) for s in ("train", "measure")}
    t = 0.0
    for key, weight, epochs, _ in jobs:
        for epoch in range(1, epochs + 1):  # a job's cost assumes the typical epoch count (here: `epochs`)
            t += weight * share["train"] / epochs * seconds_per_unit
            yield t, ("progress", key, "train", epoch, budget)
        for chunk in range(1, chunks + 1):
            t += weight * share["measure"] / chunks * seconds_per_unit
            yield t, ("progress", key, "measure", chunk, chunks)
        yield t, ("finish", key)


def replay(work: WorkLeft, events) -> list[tuple[float, float | None]]:
    shown = []
    for t, event in events:
        if event[0] == "finish":
            work.finish(event[1], t)
        else:
            work.progress(*event[1:], now=t)
        shown.append((t, work.seconds_left(t)))
    return shown


def test_a_steady_study_gets_the_exact_time_left_and_the_start_up_does_not_count():
    jobs = [("big", 4.0, 3, 3), ("mid", 2.0, 3, 3), ("small", 1.0, 3, 3)]
    events = [(t + 30.0, e) for t, e in simulate(jobs, seconds_per_unit=10.0, budget=3)]  # 30 s of start-up first
    end = events[-1][0]
    shown = replay(WorkLeft({k: w for k, w, _, _ in jobs}), events)
    assert shown[0][1] is None  # one event: no rate yet
    for t, left in shown[1:]:
        assert left == pytest.approx(end - t, abs=1e-6)  # weights x rate: exact, whatever job is running


def test_job_weights_matter():
    """The same events weigh more when they belong to the heavier job."""
    heavy, light = WorkLeft({"a": 3.0, "b": 1.0}), WorkLeft({"a": 1.0, "b": 3.0})
    for work in (heavy, light):
        work.progress("a", "train", 1, 4, now=0.0)
        work.progress("a", "train", 2, 4, now=10.0)
    assert heavy.seconds_left(10.0) < light.seconds_left(10.0)
    f = STAGE_SHARES["train"] / (STAGE_SHARES["train"] + STAGE_SHARES["measure"])
    done, left = 3.0 * f * (2 / 4 - 1 / 4), 3.0 * (1 - f * 2 / 4) + 1.0  # the first epoch was before the clock
    assert heavy.seconds_left(10.0) == pytest.approx(left * 10.0 / done)


def test_epochs_are_learned_from_finished_jobs_of_the_same_group():
    """Training stops early at the target accuracy: after the first job of a group, its epoch count
    replaces the budget for that group; a group without a finished job keeps the budget."""
    work = WorkLeft({"c0": 1.0, "c1": 1.0, "a0": 1.0}, groups={"c0": "centred", "c1": "centred", "a0": "augmented"})
    work.progress("c0", "train", 1, 10, now=0.0)
    work.progress("c0", "train", 2, 10, now=1.0)
    work.progress("c0", "measure", 1, 1, now=2.0)
    work.finish("c0", now=2.0)
    work.progress("c1", "train", 1, 10, now=3.0)
    work.progress("a0", "train", 1, 10, now=3.0)
    share = STAGE_SHARES["train"] / (STAGE_SHARES["train"] + STAGE_SHARES["measure"])
    assert work.fraction("c1") == pytest.approx(share * 1 / 2)  # 1 of the 2 epochs c0 took
    assert work.fraction("a0") == pytest.approx(share * 1 / 10)  # 1 of its budget of 10
    work.progress("c1", "train", 5, 10, now=4.0)  # longer than c0: expected at least one more epoch
    assert work.fraction("c1") == pytest.approx(share * 5 / 6)
    work.progress("c1", "measure", 0, 3, now=5.0)  # measuring: its training is over, however long it took
    assert work.fraction("c1") == pytest.approx(share)


def test_transfer_and_probe_stages():
    work = WorkLeft({"t": 1.0, "p": 1.0}, stages={"t": ("train", "head", "measure"), "p": ("train",)})
    work.progress("t", "head", 1, 4, now=0.0)
    total = sum(STAGE_SHARES.values())
    assert work.fraction("t") == pytest.approx((STAGE_SHARES["train"] + STAGE_SHARES["head"] / 4) / total)
    work.progress("p", "train", 2, 4, now=1.0)
    assert work.fraction("p") == pytest.approx(0.5)
    work.finish("t", now=2.0)
    work.finish("p", now=3.0)
    assert work.seconds_left(3.0) == 0.0


def test_a_job_that_starts_after_the_clock_counts_from_zero():
    work = WorkLeft({"a": 1.0, "b": 1.0})
    work.progress("a", "measure", 1, 1, now=0.0)  # the clock starts; all of a's work was before it
    work.finish("a", now=0.0)
    assert work.done == 0.0 and work.seconds_left(0.0) is None
    work.progress("b", "measure", 1, 2, now=10.0)  # b started after the clock: all its work counts
    total = STAGE_SHARES["train"] + STAGE_SHARES["measure"]
    expected = (STAGE_SHARES["train"] + STAGE_SHARES["measure"] / 2) / total
    assert work.done == pytest.approx(expected)
    assert work.seconds_left(10.0) == pytest.approx((1 - expected) * 10.0 / expected)


def test_job_weights_and_stages_of_a_config():
    config = StudyConfig(models=("strided_gap", "maxpool_gap"), conditions=("centred", "probe", "transfer"), seeds=1)
    jobs = jobs_of(config)
    weights = job_weights(config, jobs)
    assert set(weights) == {job.key for job in jobs}
    centred = weights[Job("maxpool_gap", "centred", 0).key]
    assert centred > 2 * weights[Job("strided_gap", "centred", 0).key]  # max-pool: convs at full resolution
    assert weights[Job("maxpool_gap", "probe", 0).key] == pytest.approx(centred * config.probe_epochs / config.max_epochs)
    assert job_stages(Job("strided_gap", "transfer", 0)) == ("train", "head", "measure")
    assert job_stages(Job("strided_gap", "probe", 0)) == ("train",)
    assert job_stages(Job("strided_gap", "centred", 0)) == ("train", "measure")


def test_the_jobs_bar_shows_the_time_left(tmp_path):
    config = StudyConfig(models=("strided_gap", "maxpool_gap"), conditions=("centred",), seeds=1)
    done_key = Job("maxpool_gap", "centred", 0).key
    json_path, _ = record_paths(tmp_path, done_key)
    json_path.parent.mkdir(parents=True)
    json_path.write_text("{}")
    with Progress(TimeLeftColumn(), console=Console(file=io.StringIO())) as bar:
        bars = _Bars(bar, config, tmp_path, resume=True)
        jobs = bar.tasks[0]
        assert (jobs.completed, jobs.total) == (1, 2)  # a finished run of the resumed study counts as done
        assert set(bars.work.weights) == {Job("strided_gap", "centred", 0).key}
        assert jobs.fields["finish_at"] is None
        key = Job("strided_gap", "centred", 0).key
        bars.progress(key, "train", 1, 20)
        bars.progress(key, "train", 2, 20)
        assert jobs.fields["finish_at"] is not None and jobs.fields["finish_at"] > time.monotonic()
        bars.on_job(key, 2, 2)
        assert jobs.fields["finish_at"] <= time.monotonic() + 1e-3


def test_time_left_column_counts_down_to_finish_at():
    column = TimeLeftColumn()
    with Progress(console=Console(file=io.StringIO())) as bar:
        unknown = bar.add_task("jobs", total=3, finish_at=None)
        known = bar.add_task("jobs", total=3, finish_at=time.monotonic() + 3725.4)
        plain = bar.add_task("epochs", total=3)
        tasks = {t.id: t for t in bar.tasks}
        assert column.render(tasks[unknown]).plain == "-:--:--"
        assert column.render(tasks[known]).plain in ("1:02:05", "1:02:04")
        assert column.render(tasks[plain]).plain == "-:--:--"  # rich's own estimate: no speed yet
