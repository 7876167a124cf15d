"""The segmentation U-Nets (shiftlab.zoo.unet): every down x up pair builds and gives full-resolution
logits; APS down + APS-U up + circular padding is exactly equivariant to every circular shift
(float64); without APS-U not; with fixed-phase downsampling and transposed convolutions only at multiples of
the total stride."""

from __future__ import annotations

import pytest
import torch

from shiftlab.zoo.unet import UNET_DOWNSAMPLINGS, UNET_UPSAMPLINGS, UNet, unet_names


def unet(name: str, **kwargs) -> UNet:
    _, down, up = name.split("_")
    torch.manual_seed(0)
    return UNet(down, up, **{"num_classes": 5, "width": 4, "levels": 2, **kwargs})


def errors_by_shift(net: UNet, x: torch.Tensor) -> dict[tuple[int, int], float]:
    """|net(T_d x) - T_d net(x)| / max |net(x)| for every circular shift d of x (float64, eval)."""
    net = net.double().eval()
    with torch.no_grad():
        y = net(x)
        return {(dy, dx): float((net(torch.roll(x, (dy, dx), (2, 3))) - torch.roll(y, (dy, dx), (2, 3))).abs().max()
                                / y.abs().max())
                for dy in range(x.shape[2]) for dx in range(x.shape[3])}


def test_the_names_are_the_valid_pairs():
    names = unet_names()
    assert len(names) == len(UNET_DOWNSAMPLINGS) * (len(UNET_UPSAMPLINGS) - 1) + 1
    assert "unet_aps_aps" in names and "unet_maxpool_aps" not in names


@pytest.mark.parametrize("name", unet_names())
def test_every_unet_gives_full_resolution_logits_and_trains(name):
    net = unet(name)
    x = torch.rand(3, 1, 16, 16)
    out = net(x)
    assert out.shape == (3, 5, 16, 16)
    loss = torch.nn.functional.cross_entropy(out, torch.randint(0, 5, (3, 16, 16)))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_aps_down_and_aps_up_with_circular_padding_is_exactly_equivariant():
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    errors = errors_by_shift(unet("unet_aps_aps", padding_mode="circular"), x)
    assert max(errors.values()) < 1e-12


@pytest.mark.parametrize("name", ["unet_aps_transposed", "unet_aps_bilinear"])
def test_aps_down_without_aps_up_is_not(name):
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    # random weights: the decoder's upsampled path is a small part of the logits, yet 1e-4 is eleven
    # orders above float64 rounding (the exact net's error is 0)
    assert max(errors_by_shift(unet(name, padding_mode="circular"), x).values()) > 1e-4


@pytest.mark.parametrize("name", ["unet_maxpool_transposed", "unet_strided_transposed", "unet_blur_transposed"])
def test_fixed_phase_unets_are_equivariant_only_at_multiples_of_the_total_stride(name):
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    errors = errors_by_shift(unet(name, padding_mode="circular"), x)
    aligned = [e for (dy, dx), e in errors.items() if dy % 4 == 0 and dx % 4 == 0]
    other = [e for (dy, dx), e in errors.items() if dy % 4 or dx % 4]
    assert max(aligned) < 1e-12
    assert min(other) > 1e-6  # every other shift: clearly above float64 rounding


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="needs downsampling='aps'"):
        UNet("maxpool", "aps")
    with pytest.raises(ValueError, match="downsampling must be one of"):
        UNet("avgpool", "transposed")
    with pytest.raises(ValueError, match="padding_mode must be 'zeros' or 'circular'"):
        UNet("aps", "aps", padding_mode="reflect")
    with pytest.raises(ValueError, match="multiples of 4"):
        unet("unet_maxpool_bilinear")(torch.rand(1, 1, 18, 16))


def test_each_skip_merge_is_a_layer_of_the_profile_that_carries_error_without_adding_it():
    """The merges concatenate; their maps' error is at most the larger of their inputs', so the
    profile lists one per level and never says a merge breaks equivariance."""
    from shiftlab import equivariance
    from shiftlab.zoo.unet import SkipMerge

    net = unet("unet_maxpool_transposed", padding_mode="circular").double().eval()
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    up, skip = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    assert torch.equal(SkipMerge()(up, skip), torch.cat([up, skip], dim=1))
    result = equivariance(net, x, shifts=[(0, 1), (1, 2), (4, 0)], mode="circular")
    names = [layer.name for layer in result.layers]
    merges = [i for i, name in enumerate(names) if name.startswith("merge.")]
    assert [names[i] for i in merges] == ["merge.1", "merge.0"]  # the decoder runs from the deepest level
    assert all(names[i - 1].startswith("up.") and names[i + 1].startswith("decoder.") for i in merges)
    origins = result.origins(1e-9)
    assert all(origins[i] == "inherited" for i in merges)
    assert any(origin.startswith("breaks here") for origin in origins)  # the profile can say a layer breaks it
