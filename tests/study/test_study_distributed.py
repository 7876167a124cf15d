"""A study under a real 2-process gloo group (``docs/study.md``, "Running under torchrun"): each
rank in its own run directory, as on two nodes without a shared filesystem. The ranks split the
jobs (each run exactly once), rank 0's directory receives every run and the results equal one
process's; a resume takes a run another rank holds without redoing it, and one with a larger
``--max-epochs`` trains on the runs that stopped short wherever they are; a rank that cannot start
stops both, and rank 0 leaves nothing behind; a second study on a running directory is refused on
every rank."""

from __future__ import annotations

import itertools
import json
import random
import shutil

import pytest

from shiftlab.measure import distributed
from shiftlab.study.config import StudyConfig
from shiftlab.study.job import record_paths
from shiftlab.study.lock import run_dir_lock
from shiftlab.study.runner import jobs_of, run_study
from shiftlab.study.sharding import assign
from spawn_ranks import run_ranks

CONFIG = dict(data="digits", models=("strided_gap", "maxpool_fc"), conditions=("centred",), seeds=2, max_epochs=1,
              n_train=200, n_test=60, n_eval=8, n_profile=4, n_boot=50, width=4, target_accuracy=0.5)
KEYS = [job.key for job in jobs_of(StudyConfig(**CONFIG))]


def _study(outs: list[str], resume: bool, changes: dict | None = None) -> dict:
    """One rank: the study (``CONFIG`` with ``changes``) into this rank's directory; what it ran
    and what it returned."""
    ran: list[str] = []
    results = run_study(StudyConfig(**{**CONFIG, **(changes or {})}), outs[distributed.rank()], resume=resume, workers=1,
                        on_job=lambda key, done, total: ran.append(key))
    return {"ran": ran, "results": results.measurements(), "ranks": results.meta.ranks, "workers": results.meta.workers}


def _outcome(outs: list[str], resume: bool) -> tuple[str, str]:
    """One rank: the error the study raised here, as (class name, message)."""
    try:
        _study(outs, resume)
    except Exception as err:  # noqa: BLE001 (the test compares what each rank raised)
        return type(err).__name__, str(err)
    return "no error", ""


def _files(out, key: str) -> dict[str, bytes]:
    """The files of run ``key`` in ``out``, by their path relative to it."""
    paths = [*(out / "checkpoints" / key).rglob("*.pt"), *record_paths(out, key)]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    return run_study(StudyConfig(**CONFIG), tmp_path_factory.mktemp("one"), workers=1).measurements()


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("nodes")
    outs = [root / "node0", root / "node1"]
    return outs, run_ranks(_study, [str(o) for o in outs], False)


def test_two_ranks_in_their_own_directories_run_each_job_once_and_give_the_one_process_results(one, two):
    (node0, node1), ranks = two
    assert ranks[0]["results"] == ranks[1]["results"] == one  # every rank returns the results
    ran0, ran1 = ranks[0]["ran"], ranks[1]["ran"]
    assert sorted(ran0 + ran1) == sorted(KEYS) and len(ran0) == len(ran1) == 2  # each job once, balanced
    assert ranks[0]["ranks"] == 2 and ranks[0]["workers"] == 2
    # rank 0's directory is complete: every record, and rank 1's checkpoints byte for byte
    assert sorted(p.stem for p in (node0 / "runs").glob("*.json")) == sorted(KEYS)
    for key in ran1:
        assert _files(node0, key) == _files(node1, key)
        assert (node0 / "checkpoints" / key / "checkpoint.pt").is_file()
    assert sorted(p.stem for p in (node1 / "runs").glob("*.json")) == sorted(ran1)  # rank 1 keeps its own
    assert (node0 / "results.json").is_file() and not (node1 / "results.json").exists()
    timing = json.loads((node0 / "timing.json").read_text())
    assert timing["sessions"] == 1 and [part["rank"] for part in timing["ranks"]] == [0, 1]
    assert [part["jobs"] for part in timing["ranks"]] == [2, 2] and all(p["seconds"] > 0 for p in timing["ranks"])


def test_a_resume_takes_a_run_that_only_another_rank_holds_without_redoing_it(one, two, tmp_path):
    (node0, node1), _ = two
    outs = [tmp_path / "node0", tmp_path / "node1"]
    shutil.copytree(node0, outs[0])
    shutil.copytree(node1, outs[1])
    key = min(p.stem for p in (node1 / "runs").glob("*.json"))
    before = _files(node1, key)
    for path in (*record_paths(outs[0], key), outs[0] / "checkpoints" / key / "checkpoint.pt"):
        path.unlink()
    ranks = run_ranks(_study, [str(o) for o in outs], True)
    assert ranks[0]["ran"] == ranks[1]["ran"] == []  # nothing trained: rank 1 had the run
    assert _files(outs[0], key) == before
    assert ranks[0]["results"] == ranks[1]["results"] == one
    assert json.loads((outs[0] / "timing.json").read_text())["sessions"] == 2


#: Stops every run at the epoch cap below the target: a resume with a larger cap trains them on.
SHORT = {"target_accuracy": 0.999, "seeds": 1, "stop_at_target": True, "schedule": "constant"}  # the second design


KEYS_SHORT = [job.key for job in jobs_of(StudyConfig(**{**CONFIG, **SHORT}))]


def _record(out, key: str) -> dict:
    return json.loads(record_paths(out, key)[0].read_text())


def test_a_resume_with_a_larger_cap_trains_on_every_short_run_and_rank0_collects_them(tmp_path):
    outs = [tmp_path / "node0", tmp_path / "node1"]
    first = run_ranks(_study, [str(o) for o in outs], False, {**SHORT, "max_epochs": 1})
    held_by_1 = first[1]["ran"]
    assert held_by_1 and all(_record(outs[0], key)["training"]["epochs"] == 1 for key in KEYS_SHORT)
    ranks = run_ranks(_study, [str(o) for o in outs], True, {**SHORT, "max_epochs": 2})
    assert sorted(ranks[0]["ran"] + ranks[1]["ran"]) == sorted(KEYS_SHORT)  # every short run trained on, once
    fresh = run_study(StudyConfig(**{**CONFIG, **SHORT, "max_epochs": 2}), tmp_path / "fresh", workers=1)
    assert ranks[0]["results"] == ranks[1]["results"] == fresh.measurements()  # as if started with the cap of 2
    for key in held_by_1:  # rank 0's directory has rank 1's trained-on record, not its stale one
        assert _files(outs[0], key) == _files(outs[1], key) and _record(outs[0], key)["training"]["epochs"] == 2


def test_a_rank_that_cannot_start_stops_both_and_rank0_leaves_nothing(tmp_path):
    outs = [tmp_path / "node0", tmp_path / "node1"]
    outs[1].mkdir()
    (outs[1] / "config.json").write_text(json.dumps(StudyConfig(**{**CONFIG, "seeds": 3}).to_dict()))
    outcomes = run_ranks(_outcome, [str(o) for o in outs], True)
    assert outcomes[1][0] == "ValueError" and "differs in: seeds" in outcomes[1][1]
    assert outcomes[0][0] == "PeerFailure" and "rank 1 of 2 failed" in outcomes[0][1] and "differs in: seeds" in outcomes[0][1]
    assert not outs[0].exists()  # rank 0's start is undone: the corrected command needs no --resume


def test_a_second_study_on_a_running_directory_is_refused_on_every_rank(tmp_path):
    out = tmp_path / "run"
    with run_dir_lock(out):  # a study runs here
        outcomes = run_ranks(_outcome, [str(out), str(out)], False)
    assert outcomes[0][0] == "RunDirLocked" and "in use by a running study" in outcomes[0][1]
    assert outcomes[1][0] == "PeerFailure" and "rank 0 of 2 failed: RunDirLocked" in outcomes[1][1]
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # neither rank wrote anything


def test_the_split_gives_every_job_to_one_rank_and_balances_the_cost():
    rng = random.Random(0)
    for _ in range(200):
        costs = [rng.randint(1, 100) for _ in range(rng.randint(0, 30))]
        n = rng.randint(1, 6)
        shares = assign(costs, n)
        assert sorted(i for share in shares for i in share) == list(range(len(costs)))
        loads = [sum(costs[i] for i in share) for share in shares]
        assert max(loads) - min(loads) <= max(costs, default=0)
        assert all(costs[a] >= costs[b] for share in shares for a, b in itertools.pairwise(share))  # costliest first
    with pytest.raises(ValueError, match="n_ranks must be >= 1"):
        assign([1.0], 0)
