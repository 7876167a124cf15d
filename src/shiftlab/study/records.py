"""What the study records about each trained model, as typed objects with ``to_dict`` /
``from_dict`` (the JSON of ``runs/KEY.json`` and of ``results.json``'s ``runs``).

A run's per-image statistics (the bootstrap's input) are kept beside its record, in
``runs/KEY.npz`` (plain float64 arrays, read with ``allow_pickle=False``). What the shift explorer
shows (:class:`ExplorerRecord`) is in the record itself, packed (``docs/explorer.md``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiftlab.io import write_atomic

__all__ = ["MAX_PACKED_VALUES", "SCHEMA_VERSION", "ExplorerRecord", "Periodicity", "RecordError", "RunRecord", "ShiftProfile",
           "TrainingRecord", "load_per_image", "pack_uint8", "save_per_image", "unpack_uint8"]

#: Version of the run-record and results format; 2 since the factorial study.
SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A saved record that cannot be read back (damaged, or from another shiftlab version)."""


#: A run key: letters, digits and ``_`` only (no separator, no ``..``; :meth:`RunRecord.check_key`).
_RUN_KEY = re.compile(r"[A-Za-z0-9_]{1,200}")


@dataclass
class Periodicity:
    """The aliasing signature: agreement with the unshifted prediction by residue of the shift
    modulo the total stride S (``docs/definitions.md``, "Aligned and unaligned agreement").

    ``residue_agreement[ry][rx]``: mean over images and over the non-zero shifts ``d`` with
    ``d mod S = (ry, rx)`` of ``[c(T_d x) = c(x)]`` (None where no shift has that residue);
    ``agreement_by_dx``: the agreement at ``(0, dx)`` for ``dx`` in ``dx_values``.
    """

    stride: int
    residue_agreement: list[list[float | None]]
    dx_values: list[int]
    agreement_by_dx: list[float]


@dataclass
class ShiftProfile:
    """Means over the evaluation images at each canvas shift ``shifts[j] = [dy, dx]``."""

    shifts: list[list[int]]
    accuracy: list[float]
    agreement: list[float]


def pack_uint8(array: np.ndarray) -> str:
    """A uint8 array's bytes (C order), zlib-compressed, as base64 text (what a browser's
    ``DecompressionStream("deflate")`` reads back). Inverse: :func:`unpack_uint8`.

    Example:
        >>> a = np.arange(6, dtype=np.uint8).reshape(2, 3)
        >>> bool((unpack_uint8(pack_uint8(a), (2, 3)) == a).all())
        True
    """
    if array.dtype != np.uint8:
        raise TypeError(f"pack_uint8 packs uint8 arrays, got {array.dtype}")
    return base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 9)).decode("ascii")


#: The most values :func:`unpack_uint8` unpacks (bytes): a packed array's declared shape may not need
#: more. The explorer's largest array in a full study needs 36,864 (16 canvases of 48x48); this
#: allows 16 canvases of 3 x 224 x 224 and more.
MAX_PACKED_VALUES = 1 << 22


def unpack_uint8(text: str, shape: Sequence[int]) -> np.ndarray:
    """The uint8 array of ``shape`` packed by :func:`pack_uint8`; :class:`RecordError` when the text
    is not such an array of that shape.

    Never more is inflated than ``shape`` needs (plus one byte, to see that more remains): a zlib
    bomb (gigabytes of zeros in a few megabytes) is refused after that many bytes, and a shape
    needing more than :data:`MAX_PACKED_VALUES` is refused before anything is inflated."""
    need = math.prod(shape)
    if need > MAX_PACKED_VALUES:
        raise RecordError(f"a packed array's shape {list(shape)} needs {need:,} values, more than the "
                          f"{MAX_PACKED_VALUES:,} values shiftlab unpacks")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(text.encode("ascii"), validate=True), need + 1)
    except (binascii.Error, zlib.error, UnicodeEncodeError, AttributeError) as err:
        raise RecordError(f"a packed array is damaged ({type(err).__name__}: {err})") from err
    if len(raw) > need:
        raise RecordError(f"a packed array holds more than {need:,} values, its shape {list(shape)} needs {need:,}")
    if not inflater.eof:  # the input ran out before the stream's end
        raise RecordError("a packed array is damaged (its zlib stream is truncated)")
    if inflater.unused_data:
        raise RecordError("a packed array is damaged (data after the end of its zlib stream)")
    if len(raw) != need:
        raise RecordError(f"a packed array holds {len(raw):,} values, its shape {list(shape)} needs {need:,}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(tuple(shape)).copy()


@dataclass
class ExplorerRecord:
    """What the shift explorer shows of one run (``docs/explorer.md``): ``n`` of its evaluation
    images (``images``: their indices in the run's evaluation set; ``labels``: their classes) at
    every position ``(dy, dx)`` of the square ``[-radius, radius]^2`` (zero-filled moves of the
    centred canvas), row-major with ``dy`` outer: ``P = (2 radius + 1)^2`` positions in the order
    of :meth:`shiftlab.measure.shiftsets.ShiftSet.grid` (:meth:`positions`).

    The arrays are kept packed (:func:`pack_uint8`), so that a full study's records stay small:

    - ``classes``: ``[n, P]`` the top-1 class at each position (:meth:`class_table`);
    - ``confidence``: ``[n, P]`` ``round(255 p)``, ``p`` the softmax probability of that class
      (:meth:`probability_table` gives ``p`` to within ``1 / 510``);
    - ``pixels``: ``[n, C, H, W]`` ``round(255 x)`` of the centred canvases, pixel values ``x``
      in ``[0, 1]`` (:meth:`canvases`; exact for 8-bit images such as MNIST's).

    ``canvas_shape`` is ``[n, C, H, W]``.
    """

    radius: int
    canvas_shape: list[int]
    images: list[int]
    labels: list[int]
    classes: str
    confidence: str
    pixels: str

    def __post_init__(self) -> None:
        def whole(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 0

        if not (whole(self.radius) and isinstance(self.canvas_shape, list) and len(self.canvas_shape) == 4
                and all(whole(v) for v in self.canvas_shape)
                and all(isinstance(v, list) and len(v) == self.canvas_shape[0] and all(whole(k) for k in v)
                        for v in (self.images, self.labels))
                and all(isinstance(v, str) for v in (self.classes, self.confidence, self.pixels))):
            raise TypeError("an explorer record needs radius, canvas_shape [n, C, H, W], n images and n labels as "
                            "non-negative ints, and classes, confidence and pixels as packed text")
        for unpack in (self.class_table, self.probability_table, self.canvases):
            unpack()  # RecordError when a packed array is damaged or not of its shape

    @property
    def n_images(self) -> int:
        return int(self.canvas_shape[0])

    def positions(self) -> np.ndarray:
        """Every position, in the order of the tables' columns. ``(P, 2)`` int64 ``(dy, dx)``."""
        r = np.arange(-self.radius, self.radius + 1)
        return np.stack(np.meshgrid(r, r, indexing="ij"), axis=-1).reshape(-1, 2)

    def class_table(self) -> np.ndarray:
        """``(n, P)`` uint8: the top-1 class of image ``i`` at position ``positions()[j]``."""
        return unpack_uint8(self.classes, (self.n_images, (2 * self.radius + 1) ** 2))

    def probability_table(self) -> np.ndarray:
        """``(n, P)`` float64: the softmax probability of that class, as stored (``k / 255``)."""
        return unpack_uint8(self.confidence, (self.n_images, (2 * self.radius + 1) ** 2)) / 255.0

    def canvases(self) -> np.ndarray:
        """``(n, C, H, W)`` uint8: the centred canvases, ``round(255 x)``."""
        return unpack_uint8(self.pixels, self.canvas_shape)


@dataclass
class TrainingRecord:
    """How a model was trained and whether it converged.

    ``history`` has one row per epoch (``epoch``, ``train_loss``, ``train_acc``, ``seconds``);
    under ``transfer`` conditions ``head_history`` has the new head's epochs. ``converged`` is
    whether the last phase reached the target training accuracy (None: no target, the probe);
    ``stopped_at_target`` whether training stopped there (the second design) or ran a fixed
    budget.
    """

    epochs: int
    converged: bool | None
    target_accuracy: float | None
    final_train_accuracy: float
    final_train_loss: float
    seconds: float
    history: list[dict]
    head_history: list[dict] = field(default_factory=list)
    stopped_at_target: bool = True  # False: a fixed budget (every run trains max_epochs); True in records written before

    def stopped_short(self, max_epochs: int) -> bool:
        """Whether a phase (the model, or a transfer run's trunk or new head) ended below the target
        after fewer than ``max_epochs`` epochs: it was trained under a lower cap, and a study
        resumed with ``max_epochs`` trains it on (``docs/study.md``, "Resume"). Never for a run
        without a target (the probe) or of a fixed budget."""
        target = self.target_accuracy
        return self.stopped_at_target and target is not None and any(
            phase and len(phase) < max_epochs and phase[-1]["train_acc"] < target
            for phase in (self.history, self.head_history))


@dataclass
class RunRecord:
    """One trained model (zoo model x condition x seed) and its measurements.

    ``downsampling`` and ``head`` come from the zoo registry at study time
    (:func:`shiftlab.zoo.spec`), never from names. ``summary`` holds the means over images of
    the per-image statistics (:data:`shiftlab.study.measurements.IMAGE_METRICS`, NaN-aware) and
    ``test_accuracy``; ``profile`` and ``periodicity`` the canvas measurement (None for the
    position probe), ``equivariance`` the per-layer profile
    (:meth:`shiftlab.EquivarianceResult.to_dict`); ``explorer`` what the shift explorer shows
    (None for the probe and the transfer conditions, and in records written before it existed);
    ``alias_fraction`` for a trunk with learned downsampling filters, per stage the mean over its
    channels of :func:`shiftlab.nn.alias_fraction` of the trained filters (None for other trunks).
    """

    key: str
    model: str
    downsampling: str
    head: str
    padding: str
    condition: str
    seed: int
    width: int
    params: int
    macs: int
    receptive_field: int
    total_stride: int
    training: TrainingRecord
    summary: dict[str, float | None]
    profile: ShiftProfile | None
    periodicity: Periodicity | None
    equivariance: dict | None
    seconds: float
    explorer: ExplorerRecord | None = None
    alias_fraction: list[float] | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check_key(self, source: str = "record") -> None:
        """Refuse a ``key`` that is not the file name of this run, ``MODEL__CONDITION__seedN`` or
        ``MODEL__CONDITION__wW__seedN`` of its own fields, in letters, digits and ``_``: the key
        names the run's files (``runs/KEY.json``, ``checkpoints/KEY``), so an absolute path,
        ``..`` or a separator there would lead out of the run directory (issue 21, case 9)."""
        base = f"{self.model}__{self.condition}"
        expected = (f"{base}__seed{self.seed}", f"{base}__w{self.width}__seed{self.seed}")
        if not isinstance(self.key, str) or self.key not in expected or not _RUN_KEY.fullmatch(self.key):
            raise RecordError(f"{source}: the key {str(self.key)[:120]!r} is not a run key of this run (expected "
                              f"{expected[0]!r} or {expected[1]!r}: a file name in the run directory)")

    def check_fields(self) -> None:
        """Refuse counts that are not whole numbers and a shift profile whose lists differ in
        length (``TypeError``; issue 21, case 17: the report failed on them with raw errors)."""
        for name, least in (("seed", 0), ("width", 1), ("params", 0), ("macs", 0), ("receptive_field", 0),
                            ("total_stride", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise TypeError(f"{name} must be an int >= {least}, got {value!r}")
        profile = self.profile
        if profile is not None:
            n = len(profile.shifts) if isinstance(profile.shifts, list) else -1
            if (n < 1 or not all(isinstance(s, list) and len(s) == 2 for s in profile.shifts)
                    or not isinstance(profile.accuracy, list) or not isinstance(profile.agreement, list)
                    or len(profile.accuracy) != n or len(profile.agreement) != n):
                raise TypeError(f"the shift profile holds {n} shifts but {_length(profile.accuracy)} accuracies and "
                                f"{_length(profile.agreement)} agreements (one of each per shift [dy, dx])")

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "record") -> RunRecord:
        """Read a record back; raises :class:`RecordError` naming ``source`` when it is malformed."""
        try:
            if not isinstance(d, dict):
                raise TypeError(f"expected a JSON object, got {type(d).__name__}")
            d = dict(d)
            d["training"] = TrainingRecord(**d["training"])
            d["profile"] = None if d.get("profile") is None else ShiftProfile(**d["profile"])
            d["periodicity"] = None if d.get("periodicity") is None else Periodicity(**d["periodicity"])
            d["explorer"] = None if d.get("explorer") is None else ExplorerRecord(**d["explorer"])
            record = cls(**d)
            record.check_key(source)
            record.check_fields()
            return record
        except (KeyError, TypeError, RecordError) as err:
            raise RecordError(f"{source} is not a valid run record ({type(err).__name__}: {err}); delete it to "
                              "redo that run") from err


def _length(value: object) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


def save_per_image(path: Path, arrays: dict[str, np.ndarray], *, root: Path | None = None) -> None:
    """Write ``arrays`` (name -> ``(N,)`` float64) to ``path`` (``.npz``) atomically
    (:func:`shiftlab.io.write_atomic`; ``root``: the run directory it must stay in)."""
    as_float: dict[str, Any] = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}
    write_atomic(path, lambda f: np.savez(f, **as_float), root=root)


def load_per_image(path: Path) -> dict[str, np.ndarray]:
    """Read a run's per-image arrays; :class:`RecordError` when the file is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k], dtype=np.float64) for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise RecordError(f"{path} is damaged ({err}); delete it and its .json to redo that run") from err
