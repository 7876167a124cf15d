"""Rich progress bars driven by the ``progress(done, total)`` callbacks of the API, and the study's
time-left estimate from the work left (:class:`WorkLeft`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from shiftlab.report.fmt import fmt_seconds

__all__ = ["STAGE_SHARES", "TimeLeftColumn", "WorkLeft", "job_line", "progress_bar", "time_left"]


@contextmanager
def progress_bar(description: str, console: Console | None = None) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``callback(done, total)`` that drives a transient rich progress bar."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def time_left(work_left: float, work_done: float, seconds: float) -> float | None:
    """Seconds ``work_left`` units of work take at the rate at which ``work_done`` units took
    ``seconds``; None before any work is done (no rate yet).

    >>> time_left(7.5, 2.5, 60.0)
    180.0
    """
    if work_done <= 0.0 or seconds <= 0.0:
        return None
    return max(0.0, work_left) * seconds / work_done


def job_line(console: Console, key: str, done: int, total: int, elapsed: float, left: float | None) -> None:
    """One plain line for a finished job, written only where ``console`` is not a terminal (a log
    file or a pipe, e.g. a long run under ``nohup``), where rich draws no bars until the end:
    ``done/total`` jobs, the job's key, the time since the start and, when known and jobs are left,
    the time left.

    Example:
        >>> import io
        >>> log = Console(file=io.StringIO())
        >>> job_line(log, "maxpool_gap__centred__seed0", 3, 10, 90.0, 210.0)
        >>> log.file.getvalue()
        '[3/10] maxpool_gap__centred__seed0 done; 90.0 s elapsed, about 3.5 min left\\n'
    """
    if console.is_terminal:
        return
    tail = "" if left is None or done >= total else f", about {fmt_seconds(left)} left"
    console.print(f"[{done}/{total}] {key} done; {fmt_seconds(elapsed)} elapsed{tail}", markup=False, highlight=False,
                  soft_wrap=True)


#: Share of a job's work per stage (renormalised over the stages a job has): training dominates;
#: a transfer run's new head trains on frozen features (cheap); measuring every shift of the
#: evaluation images costs about as much as a few training epochs.
STAGE_SHARES: dict[str, float] = {"train": 0.65, "head": 0.05, "measure": 0.30}


class WorkLeft:
    """The time a study has left, from the work it has left, in cost units, and the rate of its
    progress events so far.

    Each job weighs ``weights[key]`` (e.g. multiply-adds of its model x its epoch budget). Inside a
    job, its stages (``stages[key]``, default train then measure) split the weight by
    :data:`STAGE_SHARES`; a training stage counts epochs done out of the epochs it is expected to
    take: the mean of the epochs finished jobs of its group (``groups[key]``, e.g. the training
    condition) took in that stage (training stops early at the target accuracy), at most its
    budget, at least one more than done so far; the budget until a job of its group has finished.
    Finished jobs count in full.

    The rate is measured from the first event on, so the start-up (worker processes, loading the
    data) does not count: the work the first jobs did before their first event is left out too
    (they started before the clock did); jobs that start later (after a job finished) count from 0.
    All times are passed in (e.g. ``time.monotonic()``).
    """

    def __init__(self, weights: Mapping[str, float], stages: Mapping[str, Sequence[str]] | None = None,
                 groups: Mapping[str, str] | None = None) -> None:
        self.weights = dict(weights)
        self.stages = {key: tuple((stages or {}).get(key, ("train", "measure"))) for key in self.weights}
        self.groups = {key: (groups or {}).get(key, "") for key in self.weights}
        self._last: dict[str, dict[str, tuple[int, int]]] = {key: {} for key in self.weights}
        self._finished: set[str] = set()
        self._epochs: dict[tuple[str, str], list[int]] = {}  # (group, stage) -> epochs finished jobs took
        self._start: float | None = None
        self._before_start: dict[str, dict[str, tuple[int, int]]] = {}  # first events of the jobs running at the start

    def progress(self, key: str, stage: str, done: int, total: int, now: float) -> None:
        """A progress event of job ``key`` at time ``now``: ``done`` of ``total`` epochs (or
        measurement chunks) of ``stage``."""
        if key not in self._last:
            return
        first = not self._last[key]
        self._last[key][stage] = (done, total)
        if self._start is None:
            self._start = now
        if first and not self._finished:  # one of the jobs that were running when the clock started
            self._before_start[key] = dict(self._last[key])

    def finish(self, key: str, now: float) -> None:
        """Job ``key`` finished at time ``now``: it counts in full, and its epochs teach the expected epochs."""
        if key not in self._last or key in self._finished:
            return
        if self._start is None:
            self._start = now
        self._finished.add(key)
        for stage, (done, _) in self._last[key].items():
            if stage != "measure":
                self._epochs.setdefault((self.groups[key], stage), []).append(done)

    def _expected(self, key: str, stage: str, done: int, total: int) -> float:
        if stage == "measure" or done >= total:
            return float(total)
        seen = self._epochs.get((self.groups[key], stage))
        typical = sum(seen) / len(seen) if seen else float(total)
        return min(float(total), max(done + 1.0, typical))

    def fraction(self, key: str) -> float:
        """How much of job ``key`` is done, in [0, 1]."""
        return 1.0 if key in self._finished else self._fraction(key, self._last[key])

    def _fraction(self, key: str, last: Mapping[str, tuple[int, int]]) -> float:
        stages = self.stages[key]
        shares = [STAGE_SHARES.get(stage, 0.0) for stage in stages]
        reached = max((stages.index(s) for s in last if s in stages), default=-1)
        done = 0.0
        for i, (stage, share) in enumerate(zip(stages, shares, strict=True)):
            if i < reached:  # a later stage has started: this one is over (perhaps early)
                done += share
            elif stage in last:
                d, t = last[stage]
                done += share * (min(1.0, d / self._expected(key, stage, d, t)) if t > 0 else 0.0)
        return min(1.0, done / sum(shares)) if sum(shares) > 0 else 0.0

    @property
    def left(self) -> float:
        """Units of work left: running jobs by the fraction they have left."""
        return float(sum(w * (1.0 - self.fraction(key)) for key, w in self.weights.items()))

    @property
    def done(self) -> float:
        """Units of work done since the clock started."""
        return float(sum(w * max(0.0, self.fraction(key) - self._fraction(key, self._before_start.get(key, {})))
                         for key, w in self.weights.items()))

    def seconds_left(self, now: float) -> float | None:
        """Seconds left at time ``now``; None until there is a rate (two events)."""
        if self._start is None:
            return None
        if all(key in self._finished for key in self.weights):
            return 0.0
        return time_left(self.left, self.done, now - self._start)


class TimeLeftColumn(TimeRemainingColumn):
    """Time left: a task with a ``finish_at`` field (a ``time.monotonic()`` instant, or None while
    unknown) counts down to it; any other task gets rich's estimate from its recent speed."""

    def render(self, task: Task) -> Text:
        if "finish_at" not in task.fields:
            return super().render(task)
        finish_at = task.fields["finish_at"]
        if finish_at is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(max(0.0, finish_at - time.monotonic()) + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")
