"""shiftlab: measure, explain and fix translation invariance and equivariance of PyTorch models.

Example:
    >>> import shiftlab as sl
    >>> x = torch.randn(2, 1, 8, 8)
    >>> torch.equal(sl.shift(x, 1, 2), torch.roll(x, (1, 2), dims=(-2, -1)))
    True
"""

import torch  # noqa: F401  (doctest namespace)

from shiftlab import _version, nn, zoo
from shiftlab.checks import check_equivariant, check_invariant
from shiftlab.conversion import ConversionReport, ConversionResult, convert
from shiftlab.measure.equivariance import EquivarianceResult, LayerEquivariance, equivariance
from shiftlab.measure.invariance import InvarianceResult, invariance
from shiftlab.measure.shifts import crop, crop_many, shift, shift_many
from shiftlab.measure.shiftsets import ShiftSet, as_shift_set
from shiftlab.onnx_export import OnnxExport, OnnxExportError, export_onnx

__version__ = _version.installed_version()  # from pyproject.toml via the package metadata

__all__ = [
    "ConversionReport",
    "ConversionResult",
    "EquivarianceResult",
    "InvarianceResult",
    "LayerEquivariance",
    "OnnxExport",
    "OnnxExportError",
    "ShiftSet",
    "as_shift_set",
    "check_equivariant",
    "check_invariant",
    "convert",
    "crop",
    "crop_many",
    "equivariance",
    "export_onnx",
    "invariance",
    "nn",
    "shift",
    "shift_many",
    "zoo",
]
