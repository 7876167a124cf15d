"""train()/evaluate(): determinism, resume equivalence, interruption, learning, input checks."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from training_helpers import numbers, state_equal, tiny_cnn

from shiftlab.training import ProgressEvent, TrainConfig, evaluate, train
from shiftlab.training.checkpoint import checkpoint_path, load_checkpoint

CONFIG = TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=11, augment="translate", max_shift=1)


def test_same_seed_gives_bitwise_identical_weights(small_digits, make_model):
    images, labels = small_digits
    a, b = make_model(), make_model()
    result_a = train(a, images, labels, CONFIG)
    result_b = train(b, images, labels, CONFIG)
    assert state_equal(a, b)
    assert numbers(result_a.history) == numbers(result_b.history)


def test_different_seed_gives_different_weights(small_digits, make_model):
    images, labels = small_digits
    a, b = make_model(), make_model()
    train(a, images, labels, TrainConfig(epochs=1, seed=0))
    train(b, images, labels, TrainConfig(epochs=1, seed=1))
    assert not state_equal(a, b)


class Recorder(nn.Module):
    """A linear classifier that keeps every input batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.clone())
        return self.linear(x.flatten(1))


def test_each_epoch_shuffles_differently(small_digits):
    images, labels = small_digits
    model = Recorder()
    train(model, images, labels, TrainConfig(epochs=2, batch_size=len(labels)))
    first, second = model.batches
    assert not torch.equal(first, second)
    assert torch.equal(first.flatten(1).sum(0), second.flatten(1).sum(0))  # same samples, new order


def test_does_not_touch_the_global_rng(small_digits, make_model):
    images, labels = small_digits
    before = torch.get_rng_state()
    train(make_model(), images, labels, TrainConfig(epochs=1))
    assert torch.equal(torch.get_rng_state(), before)


def test_same_weights_under_use_deterministic_algorithms(small_digits, make_model):
    images, labels = small_digits
    plain, strict = make_model(), make_model()
    train(plain, images, labels, CONFIG)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        train(strict, images, labels, CONFIG)
    finally:
        torch.use_deterministic_algorithms(previous)
    assert state_equal(plain, strict)


def _uninterrupted(images, labels, model, config=CONFIG, **kwargs):
    result = train(model, images, labels, config, **kwargs)
    return model, result


def test_resume_after_epoch_one_matches_uninterrupted_run(small_digits, make_model, tmp_path):
    images, labels = small_digits
    val = (images[:64], labels[:64])
    reference, expected = _uninterrupted(images, labels, make_model(), val_images=val[0], val_labels=val[1])
    first = TrainConfig(**{**CONFIG.to_dict(), "epochs": 1})
    train(make_model(), images, labels, first, checkpoint_dir=tmp_path, val_images=val[0], val_labels=val[1])
    resumed_model = make_model()
    resumed = train(resumed_model, images, labels, CONFIG, checkpoint_dir=tmp_path, resume=True,
                    val_images=val[0], val_labels=val[1])
    assert state_equal(resumed_model, reference)
    assert numbers(resumed.history) == numbers(expected.history)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 3
    assert resumed.seconds == pytest.approx(sum(row["seconds"] for row in resumed.history))


def test_resume_with_another_thread_count_warns_and_the_same_count_does_not(small_digits, make_model, tmp_path):
    images, labels = small_digits[0][:128], small_digits[1][:128]
    first = TrainConfig(**{**CONFIG.to_dict(), "epochs": 1})
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train(make_model(), images, labels, first, checkpoint_dir=tmp_path)
        assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["threads"] == 1
        torch.set_num_threads(2)
        with pytest.warns(UserWarning, match=r"with 2 torch thread\(s\); it was written with 1: .* "
                                             r"torch.set_num_threads\(1\) gives identical numbers"):
            train(make_model(), images, labels, TrainConfig(**{**CONFIG.to_dict(), "epochs": 2}), checkpoint_dir=tmp_path,
                  resume=True)
        torch.set_num_threads(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # written with 2 now: resuming with 2 is silent
            train(make_model(), images, labels, CONFIG, checkpoint_dir=tmp_path, resume=True)
    finally:
        torch.set_num_threads(before)


def test_keyboard_interrupt_mid_epoch_then_resume_loses_nothing(small_digits, make_model, tmp_path):
    images, labels = small_digits
    reference, expected = _uninterrupted(images, labels, make_model())

    def interrupt_in_epoch_two(event: ProgressEvent) -> None:
        if event.kind == "step" and event.epoch == 2 and event.step == 4:
            raise KeyboardInterrupt

    model = make_model()
    with pytest.raises(KeyboardInterrupt):
        train(model, images, labels, CONFIG, checkpoint_dir=tmp_path, progress=interrupt_in_epoch_two)
    assert load_checkpoint(checkpoint_path(tmp_path)).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert not model.training
    resumed = train(model, images, labels, CONFIG, checkpoint_dir=tmp_path, resume=True)
    assert state_equal(model, reference)
    assert numbers(resumed.history) == numbers(expected.history)
    assert resumed.resumed_from == 1


def test_resume_when_complete_returns_saved_result_without_training(small_digits, make_model, tmp_path):
    images, labels = small_digits
    model = make_model()
    done = train(model, images, labels, CONFIG, checkpoint_dir=tmp_path)

    def fail(event: ProgressEvent) -> None:
        raise AssertionError("no training expected")

    again_model = make_model()
    again = train(again_model, images, labels, CONFIG, checkpoint_dir=tmp_path, resume=True, progress=fail)
    assert again.history == done.history and again.seconds == done.seconds
    assert again.resumed_from == 3
    assert state_equal(again_model, model)


def test_resume_without_checkpoint_starts_from_scratch(small_digits, make_model, tmp_path):
    images, labels = small_digits
    reference, expected = _uninterrupted(images, labels, make_model())
    model = make_model()
    result = train(model, images, labels, CONFIG, checkpoint_dir=tmp_path / "new", resume=True)
    assert result.resumed_from is None
    assert numbers(result.history) == numbers(expected.history) and state_equal(model, reference)
    assert checkpoint_path(tmp_path / "new").exists()


def test_progress_events_and_modes(small_digits, make_model):
    images, labels = small_digits
    events, modes = [], []

    def record(event: ProgressEvent) -> None:
        events.append(event)
        modes.append(model.training)

    model = make_model()
    config = TrainConfig(epochs=2, batch_size=100)
    result = train(model, images, labels, config, progress=record)
    steps = [(e.epoch, e.step, e.steps) for e in events if e.kind == "step"]
    assert steps == [(epoch, step, 3) for epoch in (1, 2) for step in (1, 2, 3)]
    epoch_events = [e for e in events if e.kind == "epoch"]
    assert [e.record for e in epoch_events] == result.history
    assert all(modes) and not model.training
    assert set(result.history[0]) == {"epoch", "train_loss", "train_acc", "seconds"}


def test_learns_real_digits(digits):
    images, labels = digits
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train_idx, test_idx = order[:1400], order[1400:]
    model = tiny_cnn()
    result = train(model, images[train_idx], labels[train_idx], TrainConfig(epochs=3, batch_size=64, lr=1e-2),
                   val_images=images[test_idx], val_labels=labels[test_idx])
    accuracy = evaluate(model, images[test_idx], labels[test_idx])
    assert accuracy > 0.8
    assert result.history[-1]["val_acc"] == accuracy
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


class NaNAfter(nn.Module):
    """Returns NaN logits from the ``calls``-th forward pass on."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls, self.seen = calls, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        out = self.linear(x.flatten(1))
        return out * float("nan") if self.seen >= self.calls else out


def test_nan_loss_names_epoch_and_step(small_digits):
    images, labels = small_digits
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 3/4.*lower learning rate \(lr=0.001\)"):
        train(NaNAfter(calls=7), images, labels, TrainConfig(epochs=3, batch_size=64))


@pytest.mark.parametrize(
    ("images", "labels", "error", "message"),
    [
        ([[0.0]], torch.zeros(1, dtype=torch.long), TypeError, "images must be a torch.Tensor"),
        (torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.long), ValueError, r"4-D \[N, C, H, W\]"),
        (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), TypeError, "floating point"),
        (torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.int32), TypeError, "torch.int64"),
        (torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, dtype=torch.long), ValueError, r"labels must be 1-D"),
        (torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long), ValueError, "got 3 labels for 4 images"),
        (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long), ValueError, "empty"),
        (torch.full((4, 1, 8, 8), float("nan")), torch.zeros(4, dtype=torch.long), ValueError, "NaN"),
        (torch.zeros(4, 1, 8, 8), -torch.ones(4, dtype=torch.long), ValueError, "non-negative"),
    ],
)
def test_bad_inputs_raise(images, labels, error, message):
    with pytest.raises(error, match=message):
        train(tiny_cnn(), images, labels, TrainConfig(epochs=1))
    with pytest.raises(error, match=message):
        evaluate(tiny_cnn(), images, labels)


def test_bad_arguments_raise(small_digits, tmp_path):
    images, labels = small_digits
    with pytest.raises(ValueError, match="give both val_images and val_labels"):
        train(tiny_cnn(), images, labels, TrainConfig(epochs=1), val_images=images)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint_dir"):
        train(tiny_cnn(), images, labels, TrainConfig(epochs=1), resume=True)
    with pytest.raises(ValueError, match="max_shift=8 must be smaller than the image size 8x8"):
        train(tiny_cnn(), images, labels, TrainConfig(epochs=1, augment="translate", max_shift=8))
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(tiny_cnn(), images, labels, {"epochs": 1})


def test_evaluate_is_eval_mode_no_grad_and_restores_modes(small_digits):
    images, labels = small_digits
    model = tiny_cnn(dropout=0.9)
    model.train()
    model[1].eval()  # mixed modes must come back exactly
    first = evaluate(model, images, labels, batch_size=50)
    second = evaluate(model, images, labels, batch_size=256)
    assert first == second  # dropout off, batch statistics not used
    assert [m.training for m in model.modules()] == [True, True, False] + [True] * 6
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        model.eval()
        expected = (model(images).argmax(1) == labels).float().mean().item()
    assert first == pytest.approx(expected)


def test_target_accuracy_stops_early_and_says_converged(digits, make_model):
    images, labels = digits
    full = train(make_model(), images, labels, TrainConfig(epochs=8, lr=3e-3))
    accs = [row["train_acc"] for row in full.history]
    target = accs[2]  # reached at epoch 3 at the latest
    first = next(i for i, a in enumerate(accs) if a >= target) + 1
    stopped = train(make_model(), images, labels, TrainConfig(epochs=8, lr=3e-3, target_accuracy=target))
    assert stopped.converged is True and stopped.epochs_completed == first < 8
    assert numbers(stopped.history) == numbers(full.history[:first])
    never = train(make_model(), images, labels, TrainConfig(epochs=2, lr=3e-3, target_accuracy=1.0))
    assert never.converged is False and never.epochs_completed == 2
    assert full.converged is None


def test_resume_of_a_converged_run_trains_no_further(tmp_path, digits, make_model):
    images, labels = digits
    config = TrainConfig(epochs=8, lr=3e-3, target_accuracy=0.5)
    first = train(make_model(), images, labels, config, checkpoint_dir=tmp_path)
    again = train(make_model(), images, labels, config, checkpoint_dir=tmp_path, resume=True)
    assert again.converged and again.epochs_completed == first.epochs_completed < 8


def test_device_cpu_explicit_and_auto_give_the_same_weights(small_digits, make_model):
    x, y = small_digits
    config = TrainConfig(epochs=1, batch_size=32, seed=0)
    default, explicit = make_model(), make_model()
    r0 = train(default, x, y, config)
    r1 = train(explicit, x, y, config, device="cpu")
    assert r0.device == r1.device == "cpu" and state_equal(default, explicit)
    if not torch.cuda.is_available():
        auto = make_model()
        assert train(auto, x, y, config, device="auto").device == "cpu" and state_equal(auto, default)
        with pytest.raises(ValueError, match="CUDA is not available here"):
            train(make_model(), x, y, config, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_follows_the_cpu_run_to_float_rounding(small_digits, make_model):
    x, y = small_digits
    config = TrainConfig(epochs=1, batch_size=32, seed=0)
    cpu, gpu = make_model(), make_model()
    train(cpu, x, y, config)
    result = train(gpu, x, y, config, device="cuda")
    assert result.device.startswith("cuda") and next(gpu.parameters()).is_cuda
    for a, b in zip(cpu.state_dict().values(), gpu.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float().cpu(), rtol=1e-2, atol=1e-3)  # the same draws, other kernels
    assert abs(evaluate(gpu, x, y) - evaluate(cpu, x, y)) <= 0.05  # data on the CPU, model on the GPU


class LrRecorder(torch.optim.AdamW):
    """AdamW that records the learning rate of every step."""

    seen: list[float] = []

    def step(self, closure=None):  # type: ignore[override]
        LrRecorder.seen.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_cosine_schedule_sets_every_steps_learning_rate(small_digits, make_model, monkeypatch):
    images, labels = small_digits
    monkeypatch.setattr(torch.optim, "AdamW", LrRecorder)
    LrRecorder.seen = []
    config = TrainConfig(epochs=2, batch_size=len(labels) // 4, lr=0.01, schedule="cosine")
    train(make_model(), images, labels, config)
    steps = len(LrRecorder.seen)
    assert steps == 2 * -(-len(labels) // config.batch_size)
    expected = [0.01 * (1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    assert LrRecorder.seen == pytest.approx(expected, rel=1e-12)
    assert LrRecorder.seen[0] == 0.01 and LrRecorder.seen[-1] < 0.01 * 0.05
    LrRecorder.seen = []
    train(make_model(), images, labels, TrainConfig(epochs=1, batch_size=32, lr=0.01))
    assert set(LrRecorder.seen) == {0.01}


def test_fixed_budget_trains_every_epoch_deterministically_and_flags_a_miss(digits, make_model):
    images, labels = digits
    budget = TrainConfig(epochs=4, lr=3e-3, schedule="cosine", target_accuracy=0.5, stop_at_target=False)
    a = train(make_model(), images, labels, budget)
    b_model = make_model()
    b = train(b_model, images, labels, budget)
    assert a.epochs_completed == 4 and a.converged is True  # reached 0.5 early, trained on to the budget
    assert a.history[0]["train_acc"] >= 0.5 or a.history[1]["train_acc"] >= 0.5
    assert numbers(a.history) == numbers(b.history)
    missed = train(make_model(), images, labels, TrainConfig(epochs=2, lr=3e-3, schedule="cosine",
                                                             target_accuracy=1.0, stop_at_target=False))
    assert missed.epochs_completed == 2 and missed.converged is False


def test_cosine_resume_matches_and_its_budget_cannot_change(small_digits, make_model, tmp_path):
    images, labels = small_digits
    config = TrainConfig(**{**CONFIG.to_dict(), "schedule": "cosine"})
    reference, expected = _uninterrupted(images, labels, make_model(), config=config)
    interrupted = make_model()

    def stop_after_epoch_one(event: ProgressEvent) -> None:
        if event.kind == "epoch" and event.epoch == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, images, labels, config, checkpoint_dir=tmp_path, progress=stop_after_epoch_one)
    resumed_model = make_model()
    resumed = train(resumed_model, images, labels, config, checkpoint_dir=tmp_path, resume=True)
    assert state_equal(resumed_model, reference)
    assert numbers(resumed.history) == numbers(expected.history)
    longer = TrainConfig(**{**config.to_dict(), "epochs": 5})
    with pytest.raises(ValueError, match="config differs from checkpoint .* in epochs"):
        train(make_model(), images, labels, longer, checkpoint_dir=tmp_path, resume=True)
