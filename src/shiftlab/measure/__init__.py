"""The measurement engine (``docs/definitions.md``): shift operators and shift sets, the model
runner, chunking, and the metrics of invariance (a classifier's predictions) and equivariance
(every layer's maps), each computed from statistics that add up across chunks and processes.

Modules, in the order a measurement uses them:

- shifts: :mod:`.shifts` (translation operators), :mod:`.shiftsets` (sets of shifts);
- checks: :mod:`.validation` (input checks), :mod:`.request` (every check a measurement makes
  before its first pass, once);
- models: :mod:`.runner` (running a torch model and leaving it as it was), :mod:`.onnx_graph`
  and :mod:`.onnx_runner` (ONNX models), :mod:`.runner_factory` (which of the two runs a model);
- running: :mod:`.driver` (the one loop every metric runs through: device, batch size, chunks of
  shifted copies), :mod:`.distributed` (shards across processes);
- invariance: :mod:`.invariance` (the public functions), :mod:`.certificate` (the polyphase
  certificate), :mod:`.invariance_recorder` (logits of each pass into statistics),
  :mod:`.invariance_statistics` (the sums and their compute step), :mod:`.invariance_result`
  (the result and its caution);
- equivariance: :mod:`.equivariance` (the public functions), :mod:`.equivariance_recorder`
  (the per-layer hooks), :mod:`.layer_records` (one layer's sums),
  :mod:`.equivariance_statistics` (the sums of every layer and their compute step),
  :mod:`.equivariance_result` (the profile and its diagnoses).
"""

from shiftlab.measure.certificate import Certificate
from shiftlab.measure.equivariance import equivariance
from shiftlab.measure.equivariance_result import EquivarianceResult, LayerEquivariance
from shiftlab.measure.invariance import invariance
from shiftlab.measure.invariance_result import InvarianceResult
from shiftlab.measure.invariance_statistics import InvarianceStats, invariance_compute, invariance_update
from shiftlab.measure.shifts import crop, crop_many, shift, shift_many
from shiftlab.measure.shiftsets import ShiftSet, as_shift_set

__all__ = ["Certificate", "EquivarianceResult", "InvarianceResult", "InvarianceStats", "LayerEquivariance", "ShiftSet",
           "as_shift_set", "crop", "crop_many", "equivariance", "invariance", "invariance_compute", "invariance_update",
           "shift", "shift_many"]
