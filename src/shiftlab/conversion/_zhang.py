"""BlurPool where Zhang (2019) puts it: :func:`shiftlab.conversion.convert`'s ``placement="zhang"``.

The rules are stated in the docstring of :mod:`shiftlab.conversion` ("Placement"). This module
decides, per strided conv, which module holds its BlurPool (:func:`place`, from the data flow of
:mod:`._flow`), and builds the replacements that differ from the ``"after_conv"`` placement.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.instancenorm import _InstanceNorm

from shiftlab.nn import BlurPool2d, MaxBlurPool2d

from ._flow import Call, Flow
from ._plan import DOWNSAMPLE_ACTIONS, Step, _circular_dense_pad, _pair, build, builtin, under

#: Modules that act on each position of a map alone (or normalise it per channel) and keep its
#: shape: the norm and activation of a conv, after which Zhang's BlurPool goes (built-in only).
POINTWISE: tuple[type[nn.Module], ...] = (
    _BatchNorm, nn.GroupNorm, _InstanceNorm, _DropoutNd, nn.Identity,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Sigmoid, nn.Tanh,
    nn.Softplus, nn.Softsign, nn.LogSigmoid, nn.Tanhshrink, nn.Hardshrink, nn.Softshrink,
    nn.Threshold,
)


@dataclass
class Placement:
    """Where the BlurPool of the strided conv at ``conv`` goes.

    Attributes:
        conv: the strided conv's path.
        host: the module wrapped to hold the BlurPool; None: the conv's own replacement
            (``Sequential(conv, pool)``, the ``"after_conv"`` form).
        before: the BlurPool runs in front of ``host`` (else after it).
        chain: the norm/activation modules between the conv and the BlurPool, in order.
        note: why this is not Zhang's placement (a fallback), for the report; None if it is.
    """

    conv: str
    host: str | None = None
    before: bool = False
    chain: tuple[str, ...] = ()
    note: str | None = None

    @property
    def blur_path(self) -> str | None:
        """The BlurPool's path in the converted model (None: inside the conv's replacement)."""
        if self.host is None:
            return None
        return f"{self.host}.{0 if self.before else 1}"


def blur_first(conv: nn.Module) -> bool:
    """Whether the planned strided layer ``conv`` is a ``1 x 1`` ``Conv2d`` without padding (a
    ResNet skip): blurred *before* it."""
    return isinstance(conv, nn.Conv2d) and tuple(conv.kernel_size) == (1, 1) \
        and not isinstance(conv.padding, str) and tuple(conv.padding) == (0, 0)


def stem(steps: list[Step], flow: Flow | None) -> Step | None:
    """The strided conv that is the network's first downsampling layer (in the order the trace ran
    them; without one, in registration order), or None when that layer is a pool."""
    down = [s for s in steps if s.action in DOWNSAMPLE_ACTIONS]
    if flow is not None:
        first = {c.path: i for i, c in reversed(list(enumerate(flow.calls))) if c.function is None}
        down.sort(key=lambda s: first.get(s.path, len(flow.calls)))
    return down[0] if down and down[0].action == "conv" else None


def _pointwise(call: Call) -> bool:
    """A call of a built-in (:func:`._plan.builtin`) :data:`POINTWISE` module."""
    t = call.module_type
    return t is not None and builtin(t) and issubclass(t, POINTWISE)


def place(path: str, flow: Flow, skip: Iterable[str]) -> Placement:
    """Zhang's place for the BlurPool of the strided conv at ``path``: after the norm/activation
    modules that take its map one after the other (each the map's only consumer), by wrapping
    the last of them; if that module also runs elsewhere (ResNet's one ``relu`` per block), in
    front of the one module that takes the result; else after the last module of the chain that
    runs once, or right after the conv, with a note."""
    skip = list(skip)
    calls = flow.calls_of(path)
    if len(calls) != 1:
        return Placement(path, note=f"{path} ran {len(calls)} times in the trace: BlurPool right "
                                    "after the conv")
    chain: list[str] = []
    cur = calls[0]
    while len(consumers := flow.consumers.get(cur, [])) == 1:
        user = flow.calls[consumers[0]]
        if not _pointwise(user) or user.inputs != (cur,) or under(user.path, skip):
            break
        chain.append(user.path)
        cur = consumers[0]
    users = [flow.calls[i] for i in flow.consumers.get(cur, [])]
    note = next((f"the map after {chain[-1] if chain else path} is taken by {u.function}() in "
                 f"{u.path or '<model>'}, a function call convert cannot wrap: BlurPool before it"
                 for u in users if u.function is not None and len(u.inputs) == 1), None)
    names = tuple(chain)
    if not chain or flow.module_calls[chain[-1]] == 1:
        return Placement(path, chain[-1] if chain else None, False, names, note)
    nxt = users[0] if len(users) == 1 else None
    if nxt is not None and nxt.function is None and nxt.inputs == (cur,) \
            and flow.module_calls[nxt.path] == 1 and not under(nxt.path, skip):
        return Placement(path, nxt.path, True, names, note)
    kept = [p for p in chain if flow.module_calls[p] == 1]
    where = f"after {kept[-1]}" if kept else "right after the conv"
    return Placement(path, kept[-1] if kept else None, False, names,
                     f"{chain[-1]} also runs elsewhere and its map has no single module consumer "
                     f"that runs once: BlurPool {where}")


def build_conv(step: Step, placement: Placement, circular: bool, filt_size: int,
               pad_type: str) -> nn.Module:
    """The replacement of a strided conv under ``placement="zhang"``: ``BlurPool`` then the conv
    at stride 1 for a ``1 x 1`` conv; the stride-1 conv alone (its BlurPool held by another
    module) when ``placement.host`` is set; else the ``"after_conv"`` form."""
    conv = step.module
    assert isinstance(conv, nn.Conv2d)  # plan_one plans "conv" for a Conv2d only
    channels, stride = conv.in_channels, conv.stride[0]
    new = build(step, "blur", circular, filt_size, pad_type)
    if blur_first(conv):
        return nn.Sequential(BlurPool2d(channels, stride, filt_size, pad_type), new.get_submodule("conv"))
    if placement.host is None:
        return new
    rest = [(name, child) for name, child in new.named_children() if name != "pool"]
    return rest[0][1] if len(rest) == 1 else nn.Sequential(OrderedDict(rest))


def build_maxpool(step: Step, circular: bool, filt_size: int, pad_type: str) -> nn.Module:
    """A strided max pool under ``placement="zhang"``: a padded square undilated
    ``MaxPool2d(k, s, p)`` becomes ``MaxPool2d(s, 1)`` (no padding) then ``BlurPool2d(s)`` as in
    Zhang's ResNet; the others as in ``"after_conv"``."""
    m = step.module
    assert isinstance(m, nn.MaxPool2d)  # plan_one plans "maxpool" for a MaxPool2d only
    k, p, d = _pair(m.kernel_size), _pair(m.padding), _pair(m.dilation)
    s = _pair(m.stride if m.stride is not None else m.kernel_size)[0]
    if p == (0, 0) or k[0] != k[1] or d != (1, 1):
        return build(step, "blur", circular, filt_size, pad_type)
    assert step.channels is not None
    new = MaxBlurPool2d(step.channels, s, s, filt_size, pad_type)
    if circular:
        new.pool = nn.Sequential(OrderedDict([
            ("pad", _circular_dense_pad((s, s), (0, 0), (1, 1))), ("pool", nn.MaxPool2d(s, 1))]))
    return new


def host(module: nn.Module, channels: int, stride: int, before: bool, filt_size: int,
         pad_type: str) -> nn.Sequential:
    """``module`` wrapped with a ``BlurPool2d``: ``Sequential(blur, module)`` or
    ``Sequential(module, blur)``."""
    blur = BlurPool2d(channels, stride, filt_size, pad_type)
    return nn.Sequential(blur, module) if before else nn.Sequential(module, blur)
