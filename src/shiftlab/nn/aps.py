"""Adaptive polyphase sampling (APS): shift-consistent subsampling.

Follows Chaman & Dokmanic, *Truly shift-invariant CNNs* (CVPR 2021). Subsampling by ``s``
keeps one of the ``s * s`` polyphase components ``x[..., i::s, j::s]``; plain striding always
keeps ``(0, 0)``, so a 1-px shift of the input swaps in a different component (aliasing,
``docs/study.md``, "Claims", C2). APS keeps, per sample, the component with the largest norm over
``(C, H, W)``. A circular shift ``T_d`` of ``x`` (``H, W`` divisible by ``s``) permutes the
components and circularly shifts each of them, leaving their norms unchanged, so APS picks
the same content: ``APS(T_d x)`` is an exact circular shift of ``APS(x)``. A network of
circular-padded convolutions, pointwise nonlinearities, APS layers and a global pool is
therefore exactly invariant to *every* circular shift (``docs/study.md``, "Claims", C3, C4), even at
random initialisation.

Tie-breaking is deterministic: among components of equal norm the first in raster order
over ``(i, j)``, i.e. the smallest flat index ``i * s + j``, is kept. (Exactly tied but
different components can make the choice, and hence invariance, depend on the shift;
with real-valued data this is rare. The reference implementation orders the components
``(0, 0), (1, 0), (0, 1), (1, 1)``, so it breaks ties differently.)

One systematic tie: at stride 2 every binomial blur (``filt_size >= 2``) has a zero at the
Nyquist frequency, so it hands each input pixel's mass to the four phases in equal shares.
For non-negative inputs (e.g. after a ReLU) all four phases then have the *same* L1 norm, the
choice is decided by rounding, and invariance is lost. :class:`APSPool2d` warns about
``norm=1`` with a blur at stride 2; use ``norm=2`` or ``inf`` there.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .blurpool import BlurPool2d, _check_input, _check_int, blur_pool2d

__all__ = ["APSPool2d", "aps_pool2d"]

Norm = int | float | str


def _parse_norm(norm: Norm) -> float:
    """Map ``1``, ``2``, ``inf`` / ``float('inf')`` / ``"inf"`` to a float order for ``vector_norm``."""
    if isinstance(norm, str):
        value = math.inf if norm.strip().lower() == "inf" else math.nan
    elif isinstance(norm, (int, float)) and not isinstance(norm, bool):
        value = float(norm)
    else:
        value = math.nan
    if value not in (1.0, 2.0, math.inf):
        raise ValueError(f"unknown norm {norm!r}; expected 1, 2 or inf (float('inf') or 'inf')")
    return value


def _polyphase(x: Tensor, stride: int) -> Tensor:
    """``x [N, C, H, W]`` as ``[N, C, H / s, s, W / s, s]``: ``out[b, c, k, i, l, j] ==
    x[b, c, i + s * k, j + s * l]``, so component ``(i, j)`` is ``out[:, :, :, i, :, j]``."""
    n, c, h, w = x.shape  # tensors under torch.jit.trace (the legacy ONNX exporter): no check there
    if not torch.jit.is_tracing() and (h % stride or w % stride):
        raise ValueError(
            f"APS needs H and W divisible by stride={stride}, got {h}x{w}; crop, pad or resize "
            f"the input so both sides are multiples of {stride} (for exact shift invariance of "
            f"a whole network: multiples of its total stride)"
        )
    return x.reshape(n, c, h // stride, stride, w // stride, stride)


def _choose_phase(phases: Tensor, order: float) -> Tensor:
    """Per sample ``[N]``, the flat index ``i * s + j`` of the component of largest norm."""
    norms = torch.linalg.vector_norm(phases.detach(), ord=order, dim=(1, 2, 4))  # [N, s, s]
    chosen: Tensor = norms.flatten(1).argmax(dim=1)  # first maximum in raster order over (i, j)
    return chosen


def _take_phase(phases: Tensor, indices: Tensor) -> Tensor:
    """Component ``indices[b]`` of each sample: ``[N, C, H / s, W / s]`` from the polyphase view."""
    stride = phases.shape[3]
    batch = torch.arange(phases.shape[0], device=phases.device)
    return phases[batch, :, :, indices // stride, :, indices % stride]


def _check_indices(indices: object, n: int, stride: int) -> Tensor:
    """Raise unless ``indices`` is an integer tensor ``[n]`` with values in ``[0, stride**2)``."""
    if not isinstance(indices, Tensor) or indices.dtype != torch.long or indices.shape != (n,):
        got = (f"{indices.dtype} tensor of shape {tuple(indices.shape)}"
               if isinstance(indices, Tensor) else type(indices).__name__)
        raise ValueError(f"indices must be a torch.long tensor of shape ({n},), got {got}")
    if n and not (0 <= int(indices.min()) and int(indices.max()) < stride * stride):
        raise ValueError(f"indices must lie in [0, {stride * stride}) for stride={stride}")
    return indices


def aps_pool2d(
    x: Tensor,
    stride: int = 2,
    norm: Norm = 2,
    filt_size: int = 1,
    pad_type: str = "circular",
    return_indices: bool = False,
    indices: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive polyphase sampling (functional APS, Chaman & Dokmanic 2021).

    Optionally blurs with a stride-1 binomial filter (as :func:`blur_pool2d`), then keeps, for
    each sample, the polyphase component ``x[n, :, i::stride, j::stride]`` of largest norm over
    ``(C, H, W)``; ties go to the first maximum in raster order over ``(i, j)``. Vectorised over
    the batch. Gradients flow through the kept component only.

    Args:
        x: input feature maps; ``H`` and ``W`` must be divisible by ``stride``.
        stride: subsampling factor, >= 2.
        norm: selection norm: ``1``, ``2`` or ``inf`` (``float('inf')`` or ``"inf"``).
        filt_size: binomial blur size 1..7 applied first (1 means no blur). Do not combine a
            blur at stride 2 with ``norm=1`` on non-negative inputs (see the module notes).
        pad_type: padding of the blur, one of ``reflect``, ``replicate``, ``zeros``,
            ``circular`` (circular keeps shift invariance exact).
        return_indices: also return the chosen phases as flat indices ``i * stride + j``.
        indices: keep these components instead of choosing (flat indices as returned with
            ``return_indices``, e.g. another APS layer's choice on a map of the same ``N, H, W``;
            ``norm`` is then unused). For a circular shift ``d`` of ``x``, the component
            ``(p + d) mod s`` of the shifted input is a circular shift of component ``p`` of
            ``x`` by ``floor((p + d) / s)`` (per axis), whatever chose ``p``.

    Shape:
        - Input: :math:`(N, C, H, W)`; ``indices``: :math:`(N,)`, ``long``.
        - Output: :math:`(N, C, H / stride, W / stride)`; with ``return_indices`` also a
          ``long`` tensor of shape :math:`(N,)` with values in ``[0, stride**2)``.

    Example:
        >>> import torch
        >>> from shiftlab.nn import aps_pool2d
        >>> x = torch.zeros(1, 1, 4, 4)
        >>> x[0, 0, 1, 2] = 5.0  # the big value sits in phase (i, j) = (1, 0)
        >>> out, idx = aps_pool2d(x, stride=2, return_indices=True)
        >>> idx
        tensor([2])
        >>> out.shape
        torch.Size([1, 1, 2, 2])
    """
    _check_input(x)
    _check_int(stride, "stride", 2)
    order = _parse_norm(norm)
    phases = _polyphase(blur_pool2d(x, stride=1, filt_size=filt_size, pad_type=pad_type), stride)
    if indices is None:
        indices = _choose_phase(phases, order)
    else:
        _check_indices(indices, x.shape[0], stride)
    out = _take_phase(phases, indices)
    return (out, indices) if return_indices else out


class APSPool2d(nn.Module):
    """Adaptive polyphase sampling layer (Chaman & Dokmanic 2021).

    Module form of :func:`aps_pool2d`: a drop-in for the subsampling step of a strided layer
    (see :class:`shiftlab.nn.MaxAPSPool2d` and :func:`shiftlab.nn.aps_conv`). With circular
    padding everywhere in the network and a global pool at the end, the network is exactly
    invariant to all circular shifts.

    Args:
        channels: number of input channels ``C``.
        stride: subsampling factor, >= 2.
        norm: selection norm: ``1``, ``2`` or ``inf`` (``float('inf')`` or ``"inf"``).
        filt_size: binomial blur size 1..7 applied first (1 means no blur); the blur is the
            child module ``blur`` (a stride-1 :class:`BlurPool2d`). With ``norm=1`` at stride 2
            a blur makes all phases tie on non-negative inputs; a ``UserWarning`` says so.
        pad_type: padding of the blur, one of ``reflect``, ``replicate``, ``zeros``,
            ``circular``.
        return_indices: make ``forward`` return ``(output, indices)`` with the chosen phases
            as flat indices ``i * stride + j`` (like ``nn.MaxPool2d(return_indices=True)``).

    Shared phases. ``follower.follow(leader)`` makes this layer keep, per sample, the component
    that ``leader`` (an :class:`APSPool2d` of the same stride) chose in the same forward pass,
    instead of choosing one from its own input: two branches that see circularly shifted
    inputs then move by the same amount, so their sum stays a shifted copy (a residual block
    whose shortcut downsamples too; Chaman & Dokmanic pass the main branch's index to the
    shortcut). The leader must run before its followers in every forward pass, on a map of the
    same ``N, H, W``; each choice serves each follower once. A follower that finds no choice
    made since its last call, or one made on another shape, raises a ``RuntimeError``, so a
    choice never carries over to another forward pass. The link is a plain attribute (not a
    submodule, not in ``state_dict``); a deep copy of a model that holds both keeps it between
    the copies. A follower may lead other layers; cycles are refused.

    Shape:
        - Input: :math:`(N, C, H, W)`, ``H`` and ``W`` divisible by ``stride``.
        - Output: :math:`(N, C, H / stride, W / stride)`; with ``return_indices`` also a
          ``long`` tensor of shape :math:`(N,)`.

    Example:
        >>> import torch
        >>> from shiftlab.nn import APSPool2d
        >>> pool = APSPool2d(8, stride=2, norm=2, filt_size=3)
        >>> x = torch.rand(4, 8, 16, 16)
        >>> shifted = torch.roll(x, shifts=(1, 3), dims=(-2, -1))
        >>> torch.allclose(pool(x).sum((2, 3)), pool(shifted).sum((2, 3)))
        True
        >>> lead = APSPool2d(8, stride=2, return_indices=True)
        >>> skip = APSPool2d(16, stride=2).follow(lead, name="lead")
        >>> y = torch.rand(4, 16, 16, 16)  # e.g. the shortcut's map of the same input
        >>> (main, chosen), short = lead(x), skip(y)  # the leader first
        >>> torch.equal(short, aps_pool2d(y, indices=chosen))
        True
    """

    _leader: APSPool2d | None  # set with object.__setattr__: not a submodule

    def __init__(
        self,
        channels: int,
        stride: int = 2,
        norm: Norm = 2,
        filt_size: int = 1,
        pad_type: str = "circular",
        return_indices: bool = False,
    ) -> None:
        super().__init__()
        self.channels = _check_int(channels, "channels", 1)
        self.stride = _check_int(stride, "stride", 2)
        self.norm = norm
        self._order = _parse_norm(norm)
        self.return_indices = return_indices
        self.blur = BlurPool2d(channels, stride=1, filt_size=filt_size, pad_type=pad_type)
        object.__setattr__(self, "_leader", None)  # not a submodule: the leader lives elsewhere
        self._leader_name: str | None = None
        self._followed = False  # keep each choice in _phase for followers
        self._phase: _Phase | None = None  # the last choice (when followed)
        self._used: _Phase | None = None  # the leader's choice this layer last took
        if self._order == 1.0 and stride == 2 and filt_size >= 2:
            warnings.warn(
                "APSPool2d(norm=1, stride=2, filt_size>=2): the blur gives all four phases the "
                "same L1 norm on non-negative inputs (e.g. after ReLU), so the choice is decided "
                "by rounding and shift invariance is lost; use norm=2 or norm='inf'",
                UserWarning,
                stacklevel=2,
            )

    @property
    def leader(self) -> APSPool2d | None:
        """The layer whose phase choice this one keeps (None: it chooses its own)."""
        return self._leader

    def follow(self, leader: APSPool2d | None, name: str | None = None) -> APSPool2d:
        """Keep ``leader``'s phase choice from now on (None: choose again); returns ``self``.

        Args:
            leader: an :class:`APSPool2d` with the same stride that runs before this layer in
                every forward pass.
            name: how error messages and ``repr`` name the leader (e.g. its module path).

        Raises:
            ValueError: ``leader`` has another stride, or following it would make a cycle.
        """
        if leader is not None:
            check_leader(leader, self.stride, "shared phases need the same stride")
            chain: APSPool2d | None = leader
            while chain is not None:
                if chain is self:
                    raise ValueError("following this leader makes a cycle of APS layers")
                chain = chain.leader
            leader._followed = True
        object.__setattr__(self, "_leader", leader)
        self._leader_name, self._used = name, None
        return self

    def _leaders_choice(self, leader: APSPool2d, n: int, h: int, w: int) -> Tensor:
        """``leader``'s indices ``[N]`` from this forward pass; raises if there are none fresh."""
        self._used = fresh_choice(leader, self._used, "APSPool2d", self._leader_name, (n, h, w))
        return self._used.indices

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        n, _, h, w = _check_input(x, self.channels).shape
        phases = _polyphase(self.blur(x), self.stride)
        if self._leader is None:
            indices = _choose_phase(phases, self._order)
        else:
            indices = self._leaders_choice(self._leader, n, h, w)
        if self._followed:
            self._phase = _Phase(indices, (n, h, w))
        out = _take_phase(phases, indices)
        return (out, indices) if self.return_indices else out

    def extra_repr(self) -> str:
        follows = "" if self._leader is None else f", follows={self._leader_name or '...'}"
        return f"{self.channels}, stride={self.stride}, norm={self.norm!r}{follows}"


@dataclass(frozen=True)
class _Phase:
    """A leader's choice in one forward pass: ``indices [N]`` and the ``(N, H, W)`` of its input."""

    indices: Tensor
    shape: tuple[int, int, int]


def check_leader(leader: object, stride: int, why: str) -> APSPool2d:
    """``leader`` if it is an :class:`APSPool2d` of ``stride``: else ``TypeError``, or a
    ``ValueError`` that names both strides and ``why`` they must agree."""
    if not isinstance(leader, APSPool2d):
        raise TypeError(f"leader must be an APSPool2d, got {type(leader).__name__}")
    if leader.stride != stride:
        raise ValueError(f"leader has stride={leader.stride}, this layer stride={stride}; {why}")
    return leader


def fresh_choice(leader: APSPool2d, used: _Phase | None, follower: str, leader_name: str | None,
                 shape: tuple[int, int, int], where: str = "input") -> _Phase:
    """``leader``'s choice from this forward pass for a ``follower`` (its class name, for messages)
    that last took ``used`` and needs a choice made on a map of ``shape = (N, H, W)`` (the
    follower's ``where``: its input, or the output of an upsampling follower); a
    ``RuntimeError`` when the leader has not chosen since, or chose on another shape."""
    phase, who = leader._phase, leader_name or "its leader"
    if phase is None or phase is used:
        raise RuntimeError(
            f"{follower} follows {who}, which has not chosen a phase since this layer last "
            "ran: in every forward pass the leader must run before its followers")
    if not torch.jit.is_tracing() and phase.shape != shape:  # traced sizes are tensors
        raise RuntimeError(
            f"{follower} follows {who}, which chose phases for (N, H, W) = {phase.shape}, "
            f"but this layer's {where} has {shape}; shared phases need the same shape")
    return phase
