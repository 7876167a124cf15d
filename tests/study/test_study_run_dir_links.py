"""A study never writes through a link that leads out of its run directory (``docs/reliability.md``,
"Run directories"): checkpoints and records refuse a linked-out folder before anything is written."""

from __future__ import annotations

import pytest

from shiftlab.study.config import StudyConfig
from shiftlab.study.runner import run_study

CONFIG = StudyConfig(data="digits", models=("strided_gap",), conditions=("centred",), seeds=1, max_epochs=1, n_train=100,
                     n_test=50, n_eval=8, n_profile=4, n_boot=50, width=4)


@pytest.mark.parametrize("folder", ["checkpoints", "runs"])
def test_a_checkpoint_or_record_folder_linked_out_of_the_run_directory_is_refused(tmp_path, folder):
    out, outside = tmp_path / "run", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / folder).symlink_to(outside)
    with pytest.raises(OSError, match=rf"{out / folder} leads out of the run directory {out}.*remove the link"):
        run_study(CONFIG, out)
    assert list(outside.iterdir()) == []
