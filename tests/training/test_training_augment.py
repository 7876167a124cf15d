"""The ``translate`` augmentation (:func:`shiftlab.data.canvas.random_translate`): vectorised
zero-filled shifts, checked against a per-image loop, and the draws every published study used."""

from __future__ import annotations

import pytest
import torch

from shiftlab.data.canvas import random_translate
from shiftlab.data.canvas import translate as translate_zeros


def slow_translate(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference: out[..., i, j] = image[..., i - dy, j - dx] where in range, else 0."""
    out = torch.zeros_like(image)
    height, width = image.shape[-2:]
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[..., i, j] = image[..., i - dy, j - dx]
    return out


def test_matches_per_image_reference():
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(12, 3, 5, 7, generator=gen)
    shifts = torch.tensor([[0, 0], [1, 0], [0, -1], [-2, 3], [4, -6], [-4, 6],
                           [5, 0], [0, 7], [-3, -3], [2, 2], [-1, 5], [3, -2]])
    fast = translate_zeros(images, shifts)
    slow = torch.stack([slow_translate(img, int(dy), int(dx)) for img, (dy, dx) in zip(images, shifts, strict=True)])
    assert torch.equal(fast, slow)


def test_direction_positive_dy_moves_content_down():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 1, 1] = 1.0
    moved = translate_zeros(image, torch.tensor([[2, -1]]))
    assert moved[0, 0, 3, 0] == 1.0 and moved.sum() == 1.0


def test_keeps_mass_when_content_stays_in_bounds():
    gen = torch.Generator().manual_seed(2)
    images = torch.zeros(64, 2, 10, 10)
    images[..., 3:7, 3:7] = torch.rand(64, 2, 4, 4, generator=gen)
    shifted = random_translate(images, 3, gen)
    torch.testing.assert_close(shifted.sum(dim=(1, 2, 3)), images.sum(dim=(1, 2, 3)))
    assert not torch.equal(shifted, images)


def test_reproducible_with_generator_and_covers_the_shift_range():
    image = torch.zeros(4000, 1, 9, 9)
    image[:, 0, 4, 4] = 1.0
    first = random_translate(image, 2, torch.Generator().manual_seed(5))
    second = random_translate(image, 2, torch.Generator().manual_seed(5))
    other = random_translate(image, 2, torch.Generator().manual_seed(6))
    assert torch.equal(first, second) and not torch.equal(first, other)
    where = first[:, 0].flatten(1).argmax(dim=1)
    offsets = {(int(k) // 9 - 4, int(k) % 9 - 4) for k in where}
    assert offsets == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_preserves_shape_and_dtype(dtype):
    images = torch.ones(3, 2, 6, 5, dtype=dtype)
    out = random_translate(images, 1, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == dtype


def test_draws_one_n_by_2_randint_as_training_always_has():
    """Training's augmentation drew ``torch.randint(-m, m + 1, (B, 2))`` before it shared the
    data module's function; the same draws keep every trained model (and result) as it was."""
    images = torch.randn(50, 1, 9, 9)
    drawn = random_translate(images, 3, torch.Generator().manual_seed(7))
    shifts = torch.randint(-3, 4, (50, 2), generator=torch.Generator().manual_seed(7))
    assert torch.equal(drawn, translate_zeros(images, shifts))
