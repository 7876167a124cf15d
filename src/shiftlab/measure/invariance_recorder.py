"""The invariance metric's view of the forward passes (``docs/definitions.md``, "Invariance
metrics"): each pass's output checked as the logits of a classifier (a single logit is a binary
classifier: :func:`binary_logits`), and the chunks of shifted logits turned into
:class:`~shiftlab.measure.invariance_statistics.InvarianceStats`, block by block
(:class:`PredictionRecorder`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from shiftlab.measure.driver import Chunk
from shiftlab.measure.invariance_statistics import InvarianceStats, invariance_update
from shiftlab.measure.validation import check_finite_output

__all__ = ["PredictionRecorder", "binary_logits", "check_label_range", "check_logits"]


def binary_logits(logits: Tensor) -> Tensor:
    """``logits`` ``[N, K]``; a single logit ``z`` (``K = 1``, a binary classifier whose decision is
    ``z > 0``, its probability ``sigmoid(z)``) as the two logits ``[0, z]``: their argmax is class 1
    exactly when ``z > 0`` and their softmax is ``[1 - sigmoid(z), sigmoid(z)]``, so a binary
    classifier is measured as one of two classes (``docs/definitions.md``, "Binary classifiers").

    Example:
        >>> binary_logits(torch.tensor([[2.0], [-1.0]])).argmax(dim=1).tolist()
        [1, 0]
    """
    if logits.shape[-1] != 1:
        return logits
    return torch.cat([torch.zeros_like(logits), logits], dim=-1)


def check_logits(out: object, batch: int, n_classes: int | None) -> Tensor:
    """``out`` of one pass of ``batch`` images as logits ``[batch, K]`` (``K == n_classes`` when
    known): ``ValueError``/``TypeError`` saying what to return instead."""
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch:
        if isinstance(out, Tensor):  # the pass's batch size is shiftlab's, not the user's: N when it matches
            dims = ["N" if k == 0 and d == batch else str(d) for k, d in enumerate(out.shape)]
            got = f"a tensor of shape ({', '.join(dims)}{',' if len(dims) == 1 else ''})" + (
                "" if out.dim() and out.shape[0] == batch else ", whose first dimension is not the images")
        else:
            got = (f"a {type(out).__name__}; return one tensor of logits (wrap the model: class Logits(nn.Module): "
                   "def forward(self, x): return model(x)[...])" if isinstance(out, (tuple, list, dict))
                   else f"a {type(out).__name__}")
        raise ValueError(
            f"invariance() needs a classifier whose output is one tensor [N, classes]; got {got}. For a dense "
            "(map) output use shiftlab.equivariance()"
        )
    if not (out.is_floating_point() or out.is_complex()):
        raise TypeError(f"the model's output is {out.dtype}; shiftlab needs floating-point outputs (logits or feature "
                        "maps): return them before any rounding or argmax")
    if n_classes is not None and out.shape[1] != n_classes:
        raise ValueError(
            f"the model's output shape depends on the input: {n_classes} classes for one batch, {out.shape[1]} for "
            "another; invariance needs a fixed [N, classes] output"
        )
    check_finite_output(out)
    return out


def check_label_range(labels: Tensor, n_classes: int) -> None:
    """Labels must be classes the model outputs (``0 .. K - 1``); else accuracy would silently be 0."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_classes:
        raise ValueError(f"labels hold class {high if high >= n_classes else low} but the model outputs {n_classes} "
                         f"classes (0..{n_classes - 1}); give labels as class indices of the model's output")


class PredictionRecorder:
    """The invariance metric's side of :func:`~shiftlab.measure.driver.run_chunks`:
    :meth:`forward` checks each pass's logits and keeps them as float64 on the CPU, and each
    :class:`~shiftlab.measure.driver.Chunk` of them goes into block tables (classes, probability
    changes and top-1 probabilities ``[n, S]``, so memory is bounded by a block); each finished
    block becomes :class:`~shiftlab.measure.invariance_statistics.InvarianceStats`, added into
    :attr:`total`.

    Args:
        n_shifts: the shifts run (``S``; the residues when certified).
        labels: those of all the images of the measurement (``[N]`` int64 on the CPU), or None.
        keep: keep the predictions table.
        pairs: ``[P, 2]`` unit steps inside the measured shift set (``ShiftSet.unit_step_pairs``).
        expand: certified runs: for each shift of the measured set, the index of its residue
            among the shifts run (``[|S|]``); None when every shift runs.
        offset: the index of the first image run here (a process's shard): every process checks
            every label, and the kept predictions carry their index in the whole set.
    """

    def __init__(self, n_shifts: int, labels: Tensor | None, keep: bool, pairs: Tensor,
                 expand: Tensor | None = None, offset: int = 0) -> None:
        self.n_shifts, self.labels, self.keep, self.pairs, self.expand = n_shifts, labels, keep, pairs, expand
        self.offset = offset
        self.total: InvarianceStats | None = None
        self.n_classes: int | None = None  # the logits' width, fixed by the first pass
        self.block = -1  # first image index of the block in the tables
        self.preds = self.change = self.top1 = torch.empty(0)

    def forward(self, out: object, batch: int) -> Tensor:
        """One pass's output (``batch`` images) checked as logits, as float64 ``[batch, K]`` on the
        CPU (a single logit as two: :func:`binary_logits`)."""
        logits = check_logits(out, batch, self.n_classes)
        self.n_classes = logits.shape[1]
        return binary_logits(logits.detach().to("cpu", torch.float64))

    def __call__(self, chunk: Chunk) -> None:
        """Add one chunk of logits to the block tables; at the block's last chunk, its statistics to :attr:`total`."""
        clean = chunk.clean
        clean_pred = clean.argmax(dim=1)
        if self.block != chunk.start:
            if self.block < 0 and self.labels is not None:
                check_label_range(self.labels, clean.shape[1])
            self.block = chunk.start
            self.preds = torch.empty(chunk.n, self.n_shifts, dtype=torch.long)
            self.change = torch.empty(chunk.n, self.n_shifts, dtype=torch.float64)
            self.top1 = torch.empty(chunk.n, self.n_shifts, dtype=torch.float64)
        clean_prob = clean.softmax(dim=1).gather(1, clean_pred[:, None])[:, 0]
        logits = chunk.outputs  # [s, n, K]
        soft = logits.softmax(dim=2)
        probs = soft.gather(2, clean_pred[None, :, None].expand(logits.shape[0], -1, 1))[..., 0]
        self.preds[:, chunk.shift_index] = logits.argmax(dim=2).T
        self.change[:, chunk.shift_index] = (probs - clean_prob[None, :]).abs().T
        self.top1[:, chunk.shift_index] = soft.amax(dim=2).T
        if chunk.last:
            first = self.offset + chunk.start
            labels = None if self.labels is None else self.labels[first: first + chunk.n]
            preds, change, top1 = self.preds, self.change, self.top1
            if self.expand is not None:  # certified: each shift's columns are its residue's
                preds, change, top1 = preds[:, self.expand], change[:, self.expand], top1[:, self.expand]
            stats = invariance_update(preds, clean_pred, change, n_classes=clean.shape[1],
                                      flip_pairs=self.pairs, labels=labels, keep_predictions=self.keep,
                                      first_index=first, top1_prob=top1)
            self.total = stats if self.total is None else self.total + stats


