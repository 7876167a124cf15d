"""torchmetrics ``Metric`` classes over the measurement engine (``docs/metrics.md``).

Update them in a training or validation loop with the model and a batch,
``metric.update(model, images, labels)``; their states are the engine's sufficient statistics
(``docs/definitions.md``, "Sufficient statistics"), reduced across processes by sum (counts and
float sums) or min/max (a layer's output range), and ``compute()`` hands the reduced statistics
to the engine's own compute function, so every number is the one :func:`shiftlab.invariance` or
:func:`shiftlab.equivariance` gives for the same images: reduce, then divide.

- :class:`ShiftInvariance`: every invariance metric at once, an :class:`~shiftlab.InvarianceResult`;
- :class:`ShiftConsistency`, :class:`CleanConsistency`, :class:`FlipRate`,
  :class:`WorstCaseAccuracy` (scalars) and :class:`AccuracyByShift` (``[|S|]``);
- :class:`LayerEquivarianceError`: per-layer equivariance errors, built for a model's layers.

Needs torchmetrics (``pip install torchmetrics``).
"""

try:
    import torchmetrics  # noqa: F401
except ImportError as err:  # pragma: no cover (torchmetrics is a test dependency)
    raise ImportError("shiftlab.metrics needs torchmetrics: pip install torchmetrics") from err

from shiftlab.metrics.equivariance import LayerEquivarianceError
from shiftlab.metrics.invariance import (
    AccuracyByShift,
    CleanConsistency,
    FlipRate,
    ShiftConsistency,
    ShiftInvariance,
    WorstCaseAccuracy,
)

__all__ = ["AccuracyByShift", "CleanConsistency", "FlipRate", "LayerEquivarianceError", "ShiftConsistency", "ShiftInvariance",
           "WorstCaseAccuracy"]
