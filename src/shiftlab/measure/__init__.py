"""The measurement engine (``docs/definitions.md``): shift operators and shift sets, the model
runner, chunking, and the metrics of invariance (a classifier's predictions) and equivariance
(every layer's maps), each computed from statistics that add up across chunks and processes.

Modules: :mod:`.shifts` (translation operators), :mod:`.shiftsets` (sets of shifts),
:mod:`.validation` (input checks), :mod:`.runner` (running a user's model and leaving it as it
was), :mod:`.driver` (the one loop every metric runs through: device, batch size, chunks of
shifted copies), :mod:`.invariance`, :mod:`.equivariance`, :mod:`.layer_records` (per-layer
sums) and :mod:`.certificate` (the polyphase certificate).
"""

from shiftlab.measure.certificate import Certificate
from shiftlab.measure.equivariance import EquivarianceResult, LayerEquivariance, equivariance
from shiftlab.measure.invariance import (
    InvarianceResult,
    InvarianceStats,
    invariance,
    invariance_compute,
    invariance_update,
)
from shiftlab.measure.shifts import crop, crop_many, shift, shift_many
from shiftlab.measure.shiftsets import ShiftSet, as_shift_set

__all__ = ["Certificate", "EquivarianceResult", "InvarianceResult", "InvarianceStats", "LayerEquivariance", "ShiftSet",
           "as_shift_set", "crop", "crop_many", "equivariance", "invariance", "invariance_compute", "invariance_update",
           "shift", "shift_many"]
