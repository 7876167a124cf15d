"""TrainConfig validation and the JSON-safe records."""

from __future__ import annotations

import json

import pytest

from shiftlab.training import TrainConfig, TrainResult


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"augment": "rotate"}, "augment must be one of"),
        ({"augment": "translate"}, "needs max_shift >= 1"),
        ({"max_shift": 2}, "no effect with augment='none'"),
    ],
)
def test_invalid_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_to_dict_is_json_safe_and_complete():
    config = TrainConfig(epochs=3, augment="translate", max_shift=2, seed=7)
    assert TrainConfig(**json.loads(json.dumps(config.to_dict()))) == config
    result = TrainResult([{"epoch": 1, "train_loss": 0.5, "train_acc": 0.9, "seconds": 0.1}], 1, 0.1, None)
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
