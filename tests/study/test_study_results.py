"""Reading results files (``shiftlab.study.results``): a config that ``StudyConfig`` would refuse
is refused when the file is read, before any reader (verdict, page, figures) uses its values."""

from __future__ import annotations

import json

import pytest

from shiftlab.study.config import StudyConfig
from shiftlab.study.records import SCHEMA_VERSION, RecordError
from shiftlab.study.results import load_results


def _write(tmp_path, config) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "config": config}))


@pytest.mark.parametrize("field, value", [("augment_range", "<b>4</b>"), ("width", -3), ("models", ["strided_gap", 3])])
def test_a_config_value_that_studyconfig_refuses_is_refused_on_reading(tmp_path, field, value):
    _write(tmp_path, dict(StudyConfig().to_dict(), **{field: value}))
    with pytest.raises(RecordError, match=rf"results.json has an invalid config: .*{field} must be"):
        load_results(tmp_path)


def test_a_valid_config_goes_on_to_the_rest_of_the_file(tmp_path):
    _write(tmp_path, StudyConfig().to_dict())
    with pytest.raises(RecordError, match=r"is not a valid results file \(KeyError: 'meta'\)"):
        load_results(tmp_path)
