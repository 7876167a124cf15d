"""Convert a model's downsampling to anti-aliased (BlurPool) or adaptive polyphase (APS) form.

:func:`convert` returns a converted deep copy of a model and a report of every layer it
changed and of what it could not fix. It fixes the two causes of lost shift
invariance/equivariance (``docs/study.md``, "Claims", C1, C2, C4): aliasing in strided layers
(``downsample=``) and non-circular borders (``padding=``).

Rules (``s`` a square integer stride > 1; ``k``, ``p``, ``d`` kernel, padding, dilation):

- ``Conv2d(stride s)`` -> ``blur``: the conv at stride 1 and a ``BlurPool2d(s)`` placed as
  "Placement" below says; ``aps``: :func:`shiftlab.nn.aps_conv` (stride 1, then
  ``APSPool2d(s)``). The conv keeps its weights (same values, same ``requires_grad``).
- ``MaxPool2d(k, s, p, d)`` -> ``blur``: :class:`~shiftlab.nn.MaxBlurPool2d` (the max at
  stride 1, then the blur; which max: "Placement" below); ``aps``:
  :class:`~shiftlab.nn.MaxAPSPool2d` (circular pad, max at stride 1, APS).
- ``AvgPool2d(k, s)`` with ``k == s``, ``p == 0`` -> ``blur``: ``BlurPool2d(s)`` (Zhang's
  rule: the binomial blur replaces the box filter; with ``filt_size=k`` it *is* the avg pool
  for ``H`` divisible by ``s``). Other strided avg pools -> ``AvgPool2d(k, 1, p)`` then
  ``BlurPool2d(s)``. ``aps``: circular pad, ``AvgPool2d(k, 1)``, ``APSPool2d(s)``.

Placement (``downsample="blur"``; ``placement=``, ``blur_stem=``). ``placement="zhang"`` (the
default) is where Zhang (2019) and his package ``antialiased_cnns`` (``resnet.py``, ``vgg.py``,
``mobilenet.py``) put the blur; a converted ResNet, VGG or MobileNetV2 equals that package's
model of the same name with the same weights (:func:`load_antialiased_state_dict` maps its keys):

- a strided conv runs at stride 1 and keeps its place and keys; its ``BlurPool2d(s)`` follows
  the modules that take its map one after the other, each the map's only consumer, and keep its
  shape: built-in norms (``BatchNorm``, ``GroupNorm``, ``InstanceNorm``), activations (``ReLU``,
  ``ReLU6``, ``GELU``, ``SiLU``, ...), ``Dropout``, ``Identity`` (found by a data-flow trace of
  the example input). The last of them is wrapped, ``Sequential(relu, blur)``; if it also runs
  elsewhere (ResNet's one ``relu`` per block, called twice) the one module that takes its map is
  wrapped instead, ``Sequential(blur, conv2)``, as Zhang's ``conv2 = Sequential(BlurPool,
  conv3x3)``. Where neither is possible the blur goes after the last chain module that runs
  once, or right after the conv; a norm or activation called as a function (``F.relu``) ends the
  chain (convert cannot wrap a call); without a trace every blur goes right after its conv. Each
  fallback is a line in ``report.notes``;
- a strided ``1 x 1`` conv without padding (a ResNet shortcut) -> ``Sequential(BlurPool2d(s),
  conv at stride 1)``, the blur first (``1 x 1`` convs commute with it; cheaper);
- ``MaxPool2d(k, s, p)`` with ``p > 0`` (square, undilated: ResNet's ``MaxPool2d(3, 2, 1)``) ->
  ``MaxPool2d(s, stride=1)`` without padding, then the blur, as Zhang's ResNet (``MaxPool2d(2,
  1)``); unpadded pools keep ``k`` (VGG's ``MaxPool2d(2, 1)``, AlexNet's ``MaxPool2d(3, 1)``).
  For ``H`` divisible by ``s`` the output size is the original's when ``2 p = k - 1``; for odd
  ``H`` a ``MaxPool2d(3, 2, 1)`` gives ``(H - 1) / 2``, one less (a shape warning with
  ``example_input``);
- the stem, the strided conv that is the network's first downsampling layer (in the traced
  order; registration order without a trace), stays strided (Zhang's ``pool_only=True``; a line
  in ``report.notes``); ``blur_stem=True`` converts it like the others (his ``pool_only=False``).

``placement="after_conv"`` is the former rule: every strided conv -> ``blurred_conv`` (the conv at
stride 1, then the blur, before its norm), a max pool keeps ``k, p, d`` at stride 1, and the stem
is blurred too (``blur_stem`` defaults to True there). In both, ``report.entries[i].blur_at``
is the path of the ``BlurPool2d`` that does a layer's subsampling, and a module wrapped to hold
another layer's blur has an entry with ``change="blur"`` and ``blur_of``. In eval mode, and with
``filt_size=1``, both compute the original function (normalisation and activations act on each
position alone); in training the norms of a Zhang conversion see the stride-1 map.

With ``padding="circular"`` every ``Conv1d/2d/3d`` with padding gets ``padding_mode="circular"``,
zero/constant/reflection/replication pad layers become ``CircularPad{1,2,3}d``, stride-1 pools
with padding pad circularly first, every :class:`~shiftlab.nn.BlurPool2d` (also inside other
shiftlab layers) gets ``pad_type="circular"``, and the dense max/avg of converted strided pools
is computed circularly (pad ``p`` before, ``d (k - 1) - p`` after, so the map keeps its size
before subsampling). With ``H, W`` divisible by the strides the converted layers are then
exactly equivariant to circular shifts by multiples of their strides (``blur``), or
shift-consistent for every circular shift (``aps``). See "Exact invariance" below for when the
whole network is.

Output sizes. ``blur`` keeps every layer's output size: a stride-1 op of output size ``n``
followed by a blur of output size ``ceil(n / s)`` gives ``floor((n - 1) / s) + 1``, the size of
the strided op, for convolutions, max pools (any ``k, p, d``) and avg pools with ``k != s`` or
``p > 0``. Exceptions: an avg pool with ``k == s``, ``p == 0`` gives ``ceil(H / s)`` instead
of ``floor(H / s)`` (equal for ``H`` divisible by ``s``); with ``padding="circular"`` a strided
pool gives ``ceil(H / s)``, and ``aps`` pools give ``H / s``; for ``H`` divisible by ``s``
that is the original size iff ``0 < k' - 2 p <= s`` with ``k' = d (k - 1) + 1`` (true for
``MaxPool2d(2)`` and ``MaxPool2d(3, 2, padding=1)``, false for ``MaxPool2d(3, 2)``). ``aps``
needs ``H, W`` divisible by ``s`` at every APS layer: a strided conv whose stride-1 output
``H + 2 p - d (k - 1)`` is not divisible by ``s`` (e.g. ``k=4, p=1, s=2``) fails at run time;
when it runs, its output size is the original one. With ``padding="circular"`` a strided conv
with ``2 p != d (k - 1)`` (ConvNeXt's ``k = s``, ``p = 0`` patchify and downsampling convs,
``k=4, p=1``) gets a ``CircularPad2d`` of ``p`` before and ``d (k - 1) - p`` after (``pad``,
before ``conv``) instead of its padding, so its stride-1 output is ``H x W`` and ``aps`` runs.

Tracing. By default convert runs one forward pass of a hook-free eval copy of the model
(running statistics untouched, no gradients) on ``example_input``, or, without it, on a built
``randn`` batch ``[2, C, 32, 32]`` (``C`` the ``in_channels`` of the first 2-D convolution in
registration order, the model's device and dtype, seed 0), and a second one of the converted
copy. The trace (module hooks plus a :class:`torch.overrides.TorchFunctionMode`; why not
:mod:`torch.fx`: see :mod:`shiftlab.conversion._trace`):

- measures the channel count of every pooling layer it replaces (:class:`~shiftlab.nn.BlurPool2d`
  and :class:`~shiftlab.nn.APSPool2d` are built for one and check it), so the order in which
  modules are registered does not matter;
- records each changed layer's output shape before and after (``report.entries``); with
  ``example_input`` a warning lists changed shapes and a converted model that fails on it
  raises an error naming the layer (on a built input, whose size is a guess, shapes are only
  recorded and a failure is a warning);
- finds spatial reductions that convert cannot see in the module tree or leaves as they are
  (``report.unconverted``, :class:`UnconvertedDownsampling`): torch functions called in a
  ``forward`` (``F.max_pool2d``, ``F.avg_pool2d``, ``F.interpolate``, ``x[..., ::2, ::2]``,
  crops) and skipped layers; a ``UserWarning`` names each one that was not skipped on request;
- finds maps that went through different APS layers and are then combined (:class:`BranchMerge`),
  e.g. a residual block whose shortcut has its own strided 1x1 conv, and shares the phases where
  one choice can serve every branch (``report.shared_phases``, see "Exact invariance"); a
  ``UserWarning`` names the merges left (``report.merges``);
- measures ``report.invariance_check``: the largest output change of the converted model in
  float64 over a few circular shifts of the first traced sample.

Without a trace (``trace=False``, no 2-D convolution, or a built input the model rejects,
e.g. a fully connected head sized for another input: a warning says so) the channel count of a
pool is the last channel-defining layer (conv ``out_channels``, norm ``num_features``, ...)
registered before it, nothing above is checked, and a wrong guess raises on the first forward;
a pool with no such layer is rejected. A trace sees one input: branches not taken on it are not
checked.

Exact invariance. With ``downsample="aps", padding="circular"`` the converted network is exactly
invariant to every circular shift of inputs whose ``H, W`` are divisible by its total stride,
at any weights, when (1) it ends in a global pool; (2) every spatial reduction is a layer convert
replaced (``report.unconverted`` empty); (3) no merge combines maps that went through different
APS layers with their own phase choices (``report.merges`` empty); (4) all padding is circular
(convert cannot change ``F.pad`` calls in a ``forward``) and the rest of the network is shift
equivariant (pointwise nonlinearities, eval-mode normalisation, no positional embeddings, no
flatten + ``Linear`` on a map). Ties between APS phase norms aside (``shiftlab.nn.aps``),
``report.invariance_check`` is then at float64 rounding.

Shared phases (``share_phases=True``, the default). Each APS layer chooses its polyphase
component from its own input, so after a shift two branches that downsample separately can move
by different amounts (a ResNet block whose main branch conv and shortcut 1x1 conv both have
stride 2: an APS ResNet-18 at random weights has consistency 0.81 over all 1,024 circular shifts
of two 32x32 images without shared phases, exactly 1 with them). Where
a merge combines maps that each went through exactly one APS layer beyond their common history,
all with the same input and output size, each run once on a map with that common history, the
APS layers that run later keep the choice of the first (:meth:`shiftlab.nn.APSPool2d.follow`,
as Chaman & Dokmanic pass the main branch's index to the shortcut): every branch then moves by
the same amount, and condition (3) holds for that merge. Each is listed in
``report.shared_phases`` (:class:`SharedPhases`: the merge, the leader's and the followers' APS
layer paths) and no longer warned about; merges that cannot be shared this way (a U-Net skip
connection, branches that downsample different numbers of times) stay in ``report.merges``.
The trace also sees the ``2 x 2 -> 1 x 1`` downsampling of replaced and APS layers, so a block
that reaches ``1 x 1`` on the traced input is tied for larger inputs too. ``share_phases=False`` leaves
every APS layer choosing its own phase.

Not converted (a ``ValueError`` lists every offending module path; pass ``skip=`` to leave
them, and everything under them, as they are): strided pools with ``return_indices=True`` or
with ``ceil_mode=True`` whose output size at the traced input is not the one without
``ceil_mode`` (or that no trace reached), non-square strides, subclasses of ``Conv2d``/``MaxPool2d``/``AvgPool2d``
that override ``forward``, strided 1-D/3-D convs and pools, ``LPPool``, ``FractionalMaxPool``,
non-global adaptive pools that are not the identity at the traced input (VGG's
``AdaptiveAvgPool2d((7, 7))`` is left alone, with a line in ``report.notes``, at 224 x 224, where
its input is 7 x 7; a 64 x 64 input makes it upsample and it is refused), ``PixelUnshuffle``,
strided ``Unfold``, downscaling ``Upsample``; with
``padding="circular"`` also ``ConvTranspose`` layers that pad or overlap (no circular mode).
Upsampling layers (``Upsample``, strided ``ConvTranspose``, ``PixelShuffle``) are left alone: they
are equivariant to every shift (``T_d -> T_{s d}``) and do not alias. A strided pool with
``ceil_mode=True`` whose output size is the same without it at the traced input (ResNet-D's
``AvgPool2d(2, 2, ceil_mode=True)`` at even sizes) is converted as the pool without
``ceil_mode``; at other input sizes the converted layer is that pool's conversion (see "Output
sizes": its size may differ by one from the original's, and APS needs sizes divisible by ``s``).

Hooks: the copy keeps the model's hooks; hooks on a replaced pooling layer are lost (a warning
says which), hooks on a converted conv stay on its stride-1 copy.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from shiftlab.nn import PAD_TYPES, APSPool2d, BlurPool2d

from . import _flow, _trace, _zhang
from ._antialiased import antialiased_key_map, load_antialiased_state_dict
from ._plan import DOWNSAMPLE_ACTIONS, Step, build, has_hooks, like, plan, plan_one, reference_tensor, refusal, size_problems
from ._report import (
    INVARIANCE_SHIFTS,
    BranchMerge,
    ConversionEntry,
    ConversionReport,
    ConversionResult,
    SharedPhases,
    UnconvertedDownsampling,
)
from ._share import share_phases as _share_phases

__all__ = [
    "DOWNSAMPLE_METHODS",
    "INVARIANCE_SHIFTS",
    "PLACEMENTS",
    "BranchMerge",
    "ConversionEntry",
    "ConversionReport",
    "ConversionResult",
    "SharedPhases",
    "UnconvertedDownsampling",
    "antialiased_key_map",
    "convert",
    "load_antialiased_state_dict",
]

#: Accepted values of ``convert(..., downsample=)`` (``None`` leaves strided layers alone).
DOWNSAMPLE_METHODS = ("blur", "aps")
#: Accepted values of ``convert(..., placement=)`` (``downsample="blur"`` only; the first is the
#: default).
PLACEMENTS = ("zhang", "after_conv")


def _oneline(module: nn.Module) -> str:
    return " ".join(repr(module).split())


def _kind(module: nn.Module) -> str:
    """``Conv2d``; ``Conv2d+BlurPool2d`` for a plain ``Sequential``."""
    if type(module) is nn.Sequential:
        return "+".join(_kind(m) for m in module)
    return type(module).__name__


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _blur_in(path: str, module: nn.Module) -> str | None:
    """The path of the first ``BlurPool2d`` in ``module`` (at ``path``), if any."""
    return next((_join(path, name) for name, m in module.named_modules()
                 if isinstance(m, BlurPool2d)), None)


def _describe(example: Any) -> str:
    if isinstance(example, Tensor):
        return f"example_input {tuple(example.shape)}"
    return f"example_input ({len(example) if isinstance(example, (tuple, list)) else 1} args)"


def convert(
    model: nn.Module,
    downsample: str | None = "blur",
    padding: str | None = None,
    *,
    filt_size: int | None = None,
    pad_type: str | None = None,
    placement: str | None = None,
    blur_stem: bool | None = None,
    norm: int | float | str = 2,
    example_input: Tensor | tuple[Any, ...] | None = None,
    skip: Iterable[str] = (),
    trace: bool = True,
    share_phases: bool = True,
) -> ConversionResult:
    """Return a deep copy of ``model`` with anti-aliased or APS downsampling and a report.

    See the module docstring for the exact rules, output sizes, the trace, when the result is
    exactly invariant and what is rejected. ``model`` itself is not modified (parameters,
    buffers, train/eval modes, hooks, ``requires_grad``); the copy keeps the trained weights (a
    converted conv holds the same values), so it can be evaluated or fine-tuned as is.

    Args:
        model: any module tree (Sequential, ModuleList, ModuleDict, custom modules, residual
            branches, modules shared between paths; the model itself may be a single layer).
        downsample: ``"blur"`` (BlurPool, Zhang 2019), ``"aps"`` (adaptive polyphase sampling,
            Chaman & Dokmanic 2021) or ``None`` (leave strided layers alone, e.g. to only make
            padding circular).
        padding: ``None`` (keep borders) or ``"circular"`` (see the module docstring).
        filt_size: binomial filter size 1..7; default 4 for ``blur``, 1 (no blur) for ``aps``.
        pad_type: BlurPool border handling (``blur`` only): ``reflect``, ``replicate``,
            ``zeros``, ``circular``; default ``circular`` with ``padding="circular"``, else
            ``reflect``. APS always pads circularly.
        placement: where the BlurPool goes (``blur`` only): ``"zhang"`` (default: after the
            norm and activation, blur-first 1x1 shortcuts, ``MaxPool2d(s, 1)`` for padded max
            pools) or ``"after_conv"`` (right after each strided conv); see "Placement".
        blur_stem: convert the stem conv too (``blur`` only); default False with ``"zhang"``
            (Zhang's ``pool_only``), True with ``"after_conv"``.
        norm: APS selection norm (``aps`` only): 1, 2 or ``inf``.
        example_input: the input of the traced forward passes: a batch ``[N, C, H, W]`` (or a
            tuple of forward arguments) like the ones the model will see; default a built
            ``randn`` batch ``[2, C, 32, 32]``. Pass it when the model needs another size, other
            arguments, or ``H, W`` divisible by a total stride above 32.
        skip: module paths left unchanged and unchecked, with everything under them.
        trace: set False to run no forward pass at all (channels guessed from registration
            order, nothing checked, no ``invariance_check``); not with ``example_input``.
        share_phases: where the trace finds APS branches merged that one phase choice can
            serve (a residual block downsampling on both branches), let the APS layers that
            run later keep the first one's choice (``report.shared_phases``); False leaves
            every APS layer choosing its own (the merges stay in ``report.merges``).

    Returns:
        :class:`ConversionResult` with ``.model`` (the converted copy, same train/eval mode,
        device and dtype) and ``.report`` (:class:`ConversionReport`); it unpacks as
        ``model, report``.

    Raises:
        ValueError: unknown options, or layers that cannot be converted faithfully (the
            message names every offending module path), or ``example_input`` failing on the
            original or the converted model (naming the innermost running module).

    Warns:
        UserWarning: downsampling left as it is (not under ``skip``) or APS branches merged
            without shared phases (both named), no trace possible on the built input, a
            failure or changed output shapes of the converted model, hooks lost on replaced
            layers.

    Example:
        >>> import torch
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
        ...                     nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
        >>> new, report = convert(net, "aps", "circular")
        >>> report.counts()
        {'Conv2d -> Conv2d+APSPool2d': 1, 'MaxPool2d -> MaxAPSPool2d': 1}
        >>> report.trace, report.unconverted, report.merges
        ('built input (2, 1, 32, 32)', [], [])
        >>> report.invariance_check < 1e-12
        True
        >>> x = torch.randn(2, 1, 16, 16)
        >>> torch.allclose(new(x), new(torch.roll(x, (3, 5), (-2, -1))), atol=1e-6)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if downsample not in (*DOWNSAMPLE_METHODS, None):
        raise ValueError(f"downsample must be one of {[*DOWNSAMPLE_METHODS, None]}, "
                         f"got {downsample!r}")
    if padding not in (None, "circular"):
        raise ValueError(f"padding must be None or 'circular', got {padding!r}")
    if example_input is not None and not trace:
        raise ValueError("example_input is the input of the trace; it needs trace=True")
    circular = padding == "circular"
    if downsample == "aps" and pad_type is not None:
        raise ValueError("pad_type applies to downsample='blur' only (APS pads circularly)")
    filt = filt_size if filt_size is not None else (1 if downsample == "aps" else 4)
    ptype = pad_type if pad_type is not None else ("circular" if circular else "reflect")
    if ptype not in PAD_TYPES:
        raise ValueError(f"pad_type must be one of {sorted(PAD_TYPES)}, got {ptype!r}")
    BlurPool2d(1, 2, filt, ptype)  # validates filt_size
    APSPool2d(1, 2, norm, filt)  # validates norm
    skip = [skip] if isinstance(skip, str) else list(skip)
    options: dict[str, Any] = {"filt_size": filt, "norm": norm if downsample == "aps" else None,
                               "pad_type": ptype if downsample == "blur" else None,
                               "skip": skip, "example_input": example_input is not None,
                               "trace": trace, "share_phases": share_phases}
    if (placement is not None or blur_stem is not None) and downsample != "blur":
        raise ValueError("placement and blur_stem apply to downsample='blur' only")
    place = placement if placement is not None else PLACEMENTS[0]
    if place not in PLACEMENTS:
        raise ValueError(f"placement must be one of {list(PLACEMENTS)}, got {placement!r}")
    stem_blurred = blur_stem if blur_stem is not None else place == "after_conv"
    zhang = downsample == "blur" and place == "zhang"
    options["placement"] = place if downsample == "blur" else None
    options["blur_stem"] = stem_blurred if downsample == "blur" else None
    if isinstance(norm, float) and norm == float("inf"):
        options["norm"] = "inf"

    work = copy.deepcopy(model)
    steps = plan(work, downsample, circular, skip)
    pools = [s for s in steps if s.action in ("maxpool", "avgpool")]
    planned = {s.path for s in steps if s.action in DOWNSAMPLE_ACTIONS}  # atomic in both traces

    # ---- trace the original: channels, shapes, unconverted downsampling, merges
    given = example_input is not None
    example, described = example_input, "not traced: trace=False"
    if given:
        described = _describe(example_input)
    elif trace:
        example, described = _trace.build_example(work)
        if example is None:
            warnings.warn(f"convert did not trace the model ({described}); channel counts of "
                          "pooling layers are guessed from registration order and downsampling "
                          "outside modules is not checked; pass example_input=", stacklevel=2)
    source = "example_input" if given else "the built input"
    before: _trace.Trace | None = None
    if example is not None:
        try:
            before = _trace.trace(
                work, example, "original", source=source, downsample=downsample, skip=skip,
                planned=planned, analyse=True)
        except ValueError as err:
            if given:
                raise
            warnings.warn(f"convert could not trace the model: {err}. Channel counts of pooling "
                          "layers are guessed from registration order and downsampling outside "
                          "modules is not checked; pass example_input=", stacklevel=2)
            example, described = None, f"not traced: {source} fails on the model ({err})"
    if before is not None:
        for s in pools:
            if s.path in before.shapes:
                s.channels, s.channels_from = before.shapes[s.path][0][1], "example_input"
    sizes = size_problems(steps, before.shapes if before is not None else {})
    if sizes:
        raise refusal(downsample, circular, sizes)
    missing = [s.path or "<model>" for s in pools if s.channels is None]
    if missing:
        raise ValueError(
            f"cannot tell the channel count of pooling layer(s) {missing}: no channel-defining "
            f"layer precedes them and the trace did not reach them; pass example_input=")

    # ---- BlurPool placement: the stem kept strided, where each strided conv's blur goes
    notes: list[str] = []
    placements: dict[str, _zhang.Placement] = {}
    if downsample == "blur" and (zhang or not stem_blurred):
        flow = _trace_flow(work, example, planned, notes) if example is not None else None
        kept = None if stem_blurred else _zhang.stem(steps, flow)
        if kept is not None:  # left strided; with padding="circular" its padding still changes
            kept.action = plan_one(kept.module, None, circular)[0] or ""
            if not kept.action:
                steps.remove(kept)
            notes.append(f"{kept.path or '<model>'}: the stem conv, kept strided (Zhang's "
                         "pool_only; blur_stem=True blurs it)")
        if zhang:
            placements = _placements(steps, flow, skip, notes)

    # ---- build
    ref = reference_tensor(work)
    replacements: dict[int, nn.Module] = {}
    entries: list[ConversionEntry] = []
    lost_hooks: list[str] = []
    old_shapes = before.shapes if before is not None else {}
    for s in steps:
        if s.action == "adaptive":  # the identity at the traced size (size_problems): left alone
            notes.append(f"{s.path} ({type(s.module).__name__}): left alone, the identity at the traced "
                         f"input {'x'.join(map(str, old_shapes[s.path][0][-2:]))}; at other sizes it "
                         "pools or upsamples")
            continue
        old_repr, old_kind = _oneline(s.module), type(s.module).__name__
        own = next(iter([*s.module.parameters(), *s.module.buffers()]), None)
        training, hooked = s.module.training, has_hooks(s.module)
        if zhang and s.action == "conv":
            built = _zhang.build_conv(s, placements[s.path], circular, filt, ptype)
        elif zhang and s.action == "maxpool":
            built = _zhang.build_maxpool(s, circular, filt, ptype)
        else:
            built = build(s, downsample, circular, filt, ptype, norm)
        new = like(built, own if own is not None and own.is_floating_point() else ref, training)
        if new is not s.module:
            replacements[id(s.module)] = new
            if hooked and s.action != "conv":
                lost_hooks.append(s.path or "<model>")
        change = "downsample" if s.action in DOWNSAMPLE_ACTIONS else "padding"
        blur_at = None
        if downsample == "blur" and change == "downsample":
            moved = placements.get(s.path)
            blur_at = moved.blur_path if moved is not None and moved.host is not None \
                else _blur_in(s.path, new)
        entries.append(ConversionEntry(
            s.path, change, old_kind, _kind(new), old_repr, _oneline(new), s.channels,
            s.channels_from, old_shapes.get(s.path, (None, None))[1], blur_at=blur_at))
    _wrap_hosts(work, placements, replacements, entries, filt, ptype, old_shapes)

    root = replacements.get(id(work), work)
    for m in list(root.modules()):
        for name, child in list(m._modules.items()):
            if child is not None and id(child) in replacements:
                m._modules[name] = replacements[id(child)]

    # ---- trace the converted copy, measure, warn
    report = ConversionReport(downsample, padding, options, entries, described, notes=notes)
    if before is not None:
        report.shared_phases, report.merges = _share_phases(before, root, skip, share_phases)
        if downsample is not None:
            report.unconverted = before.unconverted
        try:
            after = _trace.trace(root, example, "converted", source=source)
        except ValueError as err:
            if given:
                raise
            warnings.warn(str(err), stacklevel=2)
        else:
            for e in entries:
                where = e.blur_at if e.blur_moved else e.path
                e.new_shape = after.shapes.get(where or "", (None, None))[1]
            report.invariance_check = _trace.invariance_check(root, example)
    changed = [f"{e.path or '<model>'}: {e.old_shape} -> {e.new_shape}"
               for e in entries if e.shape_changed]
    if changed and given:
        warnings.warn("convert changed the output shape of " + "; ".join(changed), stacklevel=2)
    unconverted = [str(u) for u in report.unconverted if not u.skipped]
    if unconverted:
        warnings.warn("convert left downsampling as it is (not replaced; the model is not "
                      "shift invariant there): " + "; ".join(unconverted), stacklevel=2)
    if report.merges:
        warnings.warn("APS phases not shared across branches: the converted model is not "
                      "exactly invariant; maps that went through different APS layers are "
                      "combined by " + "; ".join(str(m) for m in report.merges), stacklevel=2)
    if lost_hooks:
        warnings.warn(f"convert replaced layers that had hooks (not carried over): {lost_hooks}",
                      stacklevel=2)
    return ConversionResult(root, report)


def _trace_flow(model: nn.Module, example: Any, planned: set[str], notes: list[str]) -> _flow.Flow | None:
    """The data flow of ``model`` on ``example`` (``planned``: :func:`._flow.trace_flow`); None
    (and a note) if it fails."""
    try:
        return _flow.trace_flow(model, example, planned)
    except ValueError as err:
        notes.append(f"no data flow ({err}): each strided conv's BlurPool is right after it")
        return None


def _placements(steps: list[Step], flow: _flow.Flow | None, skip: list[str],
                notes: list[str]) -> dict[str, _zhang.Placement]:
    """Where the BlurPool of each strided conv among ``steps`` goes (``placement="zhang"``), with
    a note for each fallback."""
    out = {s.path: _zhang.Placement(s.path) for s in steps if s.action == "conv"}
    convs = [s for s in steps if s.action == "conv" and not _zhang.blur_first(s.module)]
    if flow is None:
        if convs:
            notes.append("not traced: each strided conv's BlurPool is right after it (as "
                         "placement='after_conv'), not after its norm and activation; pass "
                         "example_input=")
        return out
    for s in convs:
        out[s.path] = _zhang.place(s.path, flow, skip)
        if out[s.path].note is not None:
            notes.append(f"{s.path}: {out[s.path].note}")
    return out


def _wrap_hosts(work: nn.Module, placements: dict[str, _zhang.Placement],
                replacements: dict[int, nn.Module], entries: list[ConversionEntry], filt: int,
                ptype: str, old_shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> None:
    """Wrap each module that holds a strided conv's BlurPool (``Sequential(module, blur)`` or
    ``Sequential(blur, module)``, around its own replacement if it has one) and record it: in
    its own entry if it has one, else in a new ``change="blur"`` entry."""
    modules: dict[str, nn.Module] = dict(work.named_modules())
    by_path = {e.path: e for e in entries}
    for p in placements.values():
        if p.host is None:
            continue
        conv, original = modules[p.conv], modules[p.host]
        assert isinstance(conv, nn.Conv2d)  # placements are made for strided Conv2d steps
        current = replacements.get(id(original), original)
        ref = next(iter([*current.parameters(), *current.buffers()]), None)
        wrapper = like(_zhang.host(current, conv.out_channels, conv.stride[0], p.before, filt,
                                   ptype), ref if ref is not None else conv.weight,
                       original.training)
        replacements[id(original)] = wrapper
        entry = by_path.get(p.host)
        if entry is None:
            entry = ConversionEntry(p.host, "blur", type(original).__name__, "", _oneline(original),
                                    "", conv.out_channels, p.conv,
                                    old_shapes.get(p.host, (None, None))[1])
            entries.append(entry)
        entry.new_kind, entry.new, entry.blur_of = _kind(wrapper), _oneline(wrapper), p.conv
    order = {path: i for i, path in enumerate(modules)}
    entries.sort(key=lambda e: order.get(e.path, len(order)))
