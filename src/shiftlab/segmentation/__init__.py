"""Segmentation FCNs under shifts (``docs/segmentation.md``).

- :func:`segmentation_shifts` and its helpers: a segmentation network's agreement with itself
  under shifts (ASSC, object agreement), EQ-T and mIoU (:mod:`.consistency`).
- The segmentation study (``shiftlab study --task segmentation``): :class:`SegStudyConfig`
  (:mod:`.config`), the shifts (:func:`seg_shifts`, :mod:`.shift_set`), :func:`run_seg_study` and
  :func:`seg_results_in` (:mod:`.runner`), :class:`SegResults` and :class:`SegCell`
  (:mod:`.analysis`), the computed answer :func:`seg_verdict` and claim :func:`c10` (:mod:`.verdict`).
"""

from .analysis import SegCell, SegResults
from .config import SEG_CONDITIONS, SEG_PRESETS, SegCondition, SegStudyConfig
from .consistency import SegmentationShifts, confusion, image_confusions, mean_iou, segmentation_shifts, valid_pixels
from .runner import run_seg_study, seg_results_in
from .shift_set import SHIFT_KINDS, seg_shifts, shift_kind
from .verdict import SegVerdict, c10, seg_verdict

__all__ = ["SEG_CONDITIONS", "SEG_PRESETS", "SHIFT_KINDS", "SegCell", "SegCondition", "SegResults", "SegStudyConfig",
           "SegVerdict", "SegmentationShifts", "c10", "confusion", "image_confusions", "mean_iou", "run_seg_study",
           "seg_results_in", "seg_shifts", "seg_verdict", "segmentation_shifts", "shift_kind", "valid_pixels"]
