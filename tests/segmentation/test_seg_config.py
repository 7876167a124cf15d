"""The segmentation study's config (shiftlab.segmentation.config): presets, checks, round trip."""

from __future__ import annotations

import pytest

from shiftlab.segmentation.config import SEG_CONDITIONS, SegStudyConfig, seg_condition
from shiftlab.segmentation.job import seg_jobs
from shiftlab.zoo import unet_names


def test_the_full_preset_is_the_factorial_and_round_trips():
    config = SegStudyConfig.preset("full")
    assert config.models == tuple(unet_names()) and config.conditions == SEG_CONDITIONS
    assert len(seg_jobs(config)) == 9 * 3 * 3 and config.stride == 8
    assert SegStudyConfig.from_dict(config.to_dict()) == config
    assert SegStudyConfig.preset("quick").is_smoke_test and not config.is_smoke_test
    assert seg_condition("circular").mode == "circular" and seg_condition("augmented").augment


@pytest.mark.parametrize("fields, message", [
    ({"models": ("unet_maxpool_aps",)}, "unknown U-Net"),
    ({"conditions": ("centred",)}, "unknown segmentation condition"),
    ({"models": ("unet_aps_aps", "unet_aps_aps")}, "more than once"),
    ({"seeds": 0}, "seeds must be an int >= 1"),
    ({"canvas": 60}, "multiple of the total stride"),
    ({"max_shift": 4}, "must reach the total stride"),
    ({"max_shift": 32}, "no room"),
    ({"margin": 0.0}, "margin"),
])
def test_bad_configs_are_refused_with_the_field_named(fields, message):
    with pytest.raises(ValueError, match=message):
        SegStudyConfig(**fields)


def test_a_config_file_with_unknown_fields_is_refused():
    with pytest.raises(ValueError, match="unknown config field"):
        SegStudyConfig.from_dict({**SegStudyConfig().to_dict(), "head": "gap"})
    with pytest.raises(ValueError, match="JSON object"):
        SegStudyConfig.from_dict([1])
