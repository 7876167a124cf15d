"""Segmentation FCNs under shifts: the consistency measurement (:mod:`.consistency`) and the
segmentation study (``shiftlab study --task segmentation``; ``docs/segmentation.md``)."""

from .consistency import SegmentationShifts, confusion, image_confusions, mean_iou, segmentation_shifts, valid_pixels

__all__ = ["SegmentationShifts", "confusion", "image_confusions", "mean_iou", "segmentation_shifts", "valid_pixels"]
