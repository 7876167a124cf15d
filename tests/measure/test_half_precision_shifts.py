"""float16 and bfloat16 images and models with band-limited shifts (``mode="fourier"``,
fractional circular or zero-filled shifts; issue 21, case 12): the shift is computed in float32
(the FFT has no half-precision kernel on the CPU) and returned in the images' dtype; before, a raw
``RuntimeError: Unsupported dtype Half``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shiftlab as sl
from shiftlab.measure.shifts import shift_many


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("mode", "shifts"), [("fourier", [(0, 0), (1, 2)]), ("circular", [(0.5, -1.5)]),
                                              ("zeros", [(0.5, 0.25)])])
def test_band_limited_shifts_of_half_precision_images_are_computed_in_float32(dtype, mode, shifts):
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    got = shift_many(x.to(dtype), shifts, mode=mode)
    assert got.dtype == dtype and got.shape == (len(shifts), 2, 1, 8, 8)
    want = shift_many(x.to(dtype).float(), shifts, mode=mode)
    assert torch.allclose(got.float(), want, atol=0.02)


def test_a_float16_model_is_measured_with_fourier_shifts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(2, 3)).eval()
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    half = sl.invariance(model.half(), images.half(), shifts=1, mode="fourier")
    assert 0 <= half.consistency <= 1
