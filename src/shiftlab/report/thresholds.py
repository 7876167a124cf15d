"""The named thresholds of the claims and the verdict (printed in the report's methods).

Differences between models are decided by their bootstrap intervals against the study's margin
(``docs/definitions.md``, "Intervals"); these constants decide the rest: when a layer counts as
exactly equivariant, when a downsampling layer aliases, when a network is at chance.
"""

from __future__ import annotations

__all__ = ["ALIASING_RATIO", "ALIASING_VS_BLUR", "BOUNDARY_RATIO", "CHANCE_MARGIN", "EXACT_AGREEMENT_TOL", "EXACT_ERROR_TOL",
           "FLIP_RATE_ZERO", "THRESHOLDS"]

#: Relative L2 equivariance error at or below which a float32 layer counts as exactly equivariant
#: (float32 round-off of a conv stack is ~1e-7; 1e-4 leaves room for deep stacks).
EXACT_ERROR_TOL = 1e-4
#: Agreement with the unshifted prediction (or consistency) within this of 1 counts as exact.
EXACT_AGREEMENT_TOL = 1e-3
#: A downsampling layer aliases when its unaligned interior error exceeds this many times its
#: aligned interior error (the aligned one floored at :data:`EXACT_ERROR_TOL`).
ALIASING_RATIO = 10.0
#: The verdict's per-layer label: a model's first downsampling layer aliases when its unaligned
#: interior error is at least this many times that of the anti-aliased FCN's BlurPool at the same
#: place (floored at :data:`EXACT_ERROR_TOL`). Against its own aligned error (:data:`ALIASING_RATIO`)
#: the label could not fail: a downsampling layer's interior error at multiples of its stride is 0
#: by construction.
ALIASING_VS_BLUR = 2.0
#: A layer has a boundary (padding) effect when its full-map aligned error exceeds this many times
#: its interior aligned error (floored at :data:`EXACT_ERROR_TOL`).
BOUNDARY_RATIO = 10.0
#: A flip rate (unit-step neighbours with different predictions) at or below this counts as zero.
FLIP_RATE_ZERO = 1e-3
#: A cell whose test accuracy is within this of chance (1 / classes) is a (near-)constant
#: classifier: trivially invariant, so its consistency says nothing about the architecture.
CHANCE_MARGIN = 0.05

#: name -> (value, meaning), in the order the report prints them.
THRESHOLDS: dict[str, tuple[float, str]] = {
    "EXACT_ERROR_TOL": (EXACT_ERROR_TOL, "relative L2 error at or below which a layer counts as exactly equivariant"),
    "EXACT_AGREEMENT_TOL": (EXACT_AGREEMENT_TOL, "agreement or consistency within this of 1 counts as exact"),
    "ALIASING_RATIO": (ALIASING_RATIO, "unaligned / aligned interior error above which a downsampling layer aliases"),
    "ALIASING_VS_BLUR": (ALIASING_VS_BLUR, "a first downsampling layer's unaligned interior error over the anti-aliased "
                                           "FCN's BlurPool's, at or above which the verdict says it aliases"),
    "BOUNDARY_RATIO": (BOUNDARY_RATIO, "full-map / interior aligned error above which a layer shows a boundary "
                                       "(padding) effect"),
    "FLIP_RATE_ZERO": (FLIP_RATE_ZERO, "flip rate at or below which unit shifts count as never changing the prediction"),
    "CHANCE_MARGIN": (CHANCE_MARGIN, "test accuracy within this of chance marks a (near-)constant classifier"),
}
