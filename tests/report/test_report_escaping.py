"""Text that reaches report.html from results.json is escaped: a hostile results file cannot
put markup or script into the page (``docs/reliability.md``)."""

import copy
import dataclasses

import pytest

from shiftlab.report import build_report
from shiftlab.study.results import write_results

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


def test_hostile_text_in_results_json_is_escaped(tmp_path, full_results):
    results = copy.deepcopy(full_results)
    results.meta = dataclasses.replace(results.meta, dataset=EVIL, hardware=EVIL, torch_version=EVIL,
                                       started=EVIL, device=EVIL)
    write_results(tmp_path, results)
    page = build_report(tmp_path).read_text()
    assert EVIL not in page and "onerror=alert" not in page.replace(ESCAPED, "")
    assert page.count(ESCAPED) >= 5  # each field above, escaped, at least once


@pytest.mark.parametrize("field, value", [("padding", EVIL), ("width", EVIL), ("augment_range", EVIL), ("seeds", True),
                                          ("models", ["strided_gap", 3])])
def test_a_config_value_of_the_wrong_type_or_value_is_refused_before_the_page(tmp_path, full_results, field, value):
    results = copy.deepcopy(full_results)
    results.config[field] = value
    write_results(tmp_path, results)
    with pytest.raises(ValueError, match=f"{field} must be"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
