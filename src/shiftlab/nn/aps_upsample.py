"""Adaptive polyphase upsampling (APS-U): upsampling that undoes its paired APS downsampling's
phase choice, so an encoder-decoder stays exactly shift equivariant.

Follows Chaman & Dokmanic, *Truly shift-equivariant convolutional neural networks with adaptive
polyphase upsampling* (Asilomar 2021). Upsampling by ``s`` by zero insertion puts the low-resolution
map at one polyphase component ``(i, j)`` of the output and zeros elsewhere; plain zero insertion
(and transposed convolution, its learned form) always uses ``(0, 0)``. APS-U uses the component
its paired APS downsampling (:class:`~shiftlab.nn.APSPool2d`) kept for the same sample in the same
forward pass. If the input of the pair moves by a circular shift ``d`` (``H, W`` divisible by
``s``), APS keeps component ``(p + d) mod s`` instead of ``p``, circularly shifted by
``floor((p + d) / s)``, and APS-U puts that at ``(p + d) mod s``: its output pixel
``s * (k + floor((p + d) / s)) + (p + d) mod s = s * k + p + d`` moves by exactly ``d``. Between the
pair, any circular-padded convolutions and pointwise layers keep the low-resolution shift, so
``APSUpsample2d(... APSPool2d(x) ...)`` is an exact circular shift of the same for ``x`` (tested
in float64 for the pair and for a U-Net; ``docs/definitions.md``, "APS upsampling").

An optional binomial blur after the zero insertion (gain ``s * s``, so a constant map upsamples to
itself) interpolates the inserted zeros; a stride-1 blur with circular padding keeps equivariance
exact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .aps import APSPool2d, _check_indices, _Phase, check_leader, fresh_choice
from .blurpool import _check_input, _check_int, _check_pad_type, blur_pool2d

__all__ = ["APSUpsample2d", "aps_upsample2d"]


def aps_upsample2d(x: Tensor, indices: Tensor, stride: int = 2, filt_size: int = 1,
                   pad_type: str = "circular") -> Tensor:
    """Zero-insertion upsampling at the polyphase components ``indices`` (functional APS-U).

    ``out[b, c, i + s * k, j + s * l] = x[b, c, k, l]`` with ``(i, j) = divmod(indices[b], s)`` and
    zeros at the other ``s * s - 1`` components; then, with ``filt_size > 1``, a stride-1 binomial
    blur (as :func:`blur_pool2d`) times ``s * s``. The inverse of keeping component ``indices[b]``:
    ``aps_pool2d(aps_upsample2d(x, idx), indices=idx) == x``.

    Args:
        x: the low-resolution maps.
        indices: per sample, the flat index ``i * stride + j`` of the component to fill, e.g. from
            ``aps_pool2d(..., return_indices=True)`` of the paired downsampling.
        stride: the upsampling factor, >= 2.
        filt_size: binomial blur size 1..7 after the insertion (1: none).
        pad_type: padding of the blur (``circular`` keeps shift equivariance exact).

    Shape:
        - Input: :math:`(N, C, H, W)`; ``indices``: :math:`(N,)`, ``long``, values in ``[0, stride**2)``.
        - Output: :math:`(N, C, H \\cdot stride, W \\cdot stride)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import aps_pool2d, aps_upsample2d
        >>> x = torch.rand(2, 3, 8, 8)
        >>> low, idx = aps_pool2d(x, stride=2, return_indices=True)
        >>> up = aps_upsample2d(low, idx, stride=2)
        >>> up.shape, torch.equal(aps_pool2d(up, indices=idx), low)
        (torch.Size([2, 3, 8, 8]), True)
    """
    n, c, h, w = _check_input(x).shape
    _check_int(stride, "stride", 2)
    _check_pad_type(pad_type)
    _check_indices(indices, n, stride)
    out = x.new_zeros(n, c, h, stride, w, stride)
    batch = torch.arange(n, device=x.device)
    out[batch, :, :, indices // stride, :, indices % stride] = x
    up = out.reshape(n, c, h * stride, w * stride)
    if filt_size == 1:
        return up
    return blur_pool2d(up, stride=1, filt_size=filt_size, pad_type=pad_type) * (stride * stride)


class APSUpsample2d(nn.Module):
    """Adaptive polyphase upsampling layer (APS-U, Chaman & Dokmanic 2021): module form of
    :func:`aps_upsample2d` that takes its phases from the paired :class:`APSPool2d`.

    ``up = APSUpsample2d(channels).follow(down)`` pairs it with ``down``, the APS layer whose map
    this layer restores to full resolution (in a U-Net, the encoder's downsampling at the same
    level). ``down`` must run before this layer in every forward pass, on a map of
    ``(N, H * stride, W * stride)``, and each of its choices serves this layer once; otherwise a
    ``RuntimeError`` says which rule was broken (so a choice never carries over to another
    forward pass). The link is a plain attribute, not a submodule, as for
    :meth:`APSPool2d.follow`. Without a leader the layer refuses to run: plain zero insertion is
    ``aps_upsample2d(x, torch.zeros(N, dtype=torch.long))``.

    Args:
        channels: number of input channels ``C``.
        stride: upsampling factor, >= 2 (the leader's stride).
        filt_size: binomial blur size 1..7 after the insertion (1: none); the blur is the child
            module ``blur`` (a stride-1 :class:`BlurPool2d`), its output scaled by ``stride**2``.
        pad_type: padding of the blur (``circular`` keeps shift equivariance exact).

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H \\cdot stride, W \\cdot stride)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import APSPool2d, APSUpsample2d
        >>> down = APSPool2d(4, stride=2)
        >>> up = APSUpsample2d(4, stride=2).follow(down, name="down")
        >>> x = torch.rand(2, 4, 8, 8)
        >>> y = up(down(x))
        >>> shifted = up(down(torch.roll(x, (1, 3), dims=(2, 3))))
        >>> torch.equal(shifted, torch.roll(y, (1, 3), dims=(2, 3)))
        True
    """

    _leader: APSPool2d | None  # set with object.__setattr__: not a submodule

    def __init__(self, channels: int, stride: int = 2, filt_size: int = 1, pad_type: str = "circular") -> None:
        super().__init__()
        self.channels = _check_int(channels, "channels", 1)
        self.stride = _check_int(stride, "stride", 2)
        self.filt_size = _check_int(filt_size, "filt_size", 1, 7)
        _check_pad_type(pad_type)
        self.pad_type = pad_type
        object.__setattr__(self, "_leader", None)
        self._leader_name: str | None = None
        self._used: _Phase | None = None

    @property
    def leader(self) -> APSPool2d | None:
        """The APS layer whose phase choice this layer restores."""
        return self._leader

    def follow(self, leader: APSPool2d, name: str | None = None) -> APSUpsample2d:
        """Take ``leader``'s phase choices from now on; returns ``self``.

        Args:
            leader: the paired :class:`APSPool2d` (same stride), run before this layer in every
                forward pass.
            name: how error messages and ``repr`` name the leader (e.g. its module path).

        Raises:
            TypeError: ``leader`` is not an :class:`APSPool2d`.
            ValueError: ``leader`` has another stride.
        """
        check_leader(leader, self.stride, "APS upsampling restores its leader's stride")
        leader._followed = True
        object.__setattr__(self, "_leader", leader)
        self._leader_name, self._used = name, None
        return self

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = _check_input(x, self.channels).shape
        if self._leader is None:
            raise RuntimeError("APSUpsample2d has no leader: pair it with its APS downsampling first, "
                               "up.follow(down)")
        self._used = fresh_choice(self._leader, self._used, "APSUpsample2d", self._leader_name,
                                  (n, h * self.stride, w * self.stride), where="output")
        return aps_upsample2d(x, self._used.indices, self.stride, self.filt_size, self.pad_type)

    def extra_repr(self) -> str:
        follows = "" if self._leader is None else f", follows={self._leader_name or '...'}"
        return f"{self.channels}, stride={self.stride}, filt_size={self.filt_size}{follows}"
