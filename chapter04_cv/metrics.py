"""Classification and segmentation metrics from a confusion matrix: accuracy, per-class accuracy, IoU, mean IoU.

Book: chapter 4, "Semantic segmentation" (the book reported no metric; these are the standard ones) and the LeNet
test loop (per-class accuracy).

Convention (the same as Ignite's ``ConfusionMatrix``): ``cm[t, p]`` counts items (images or pixels) of true class
``t`` predicted as ``p``; rows are the truth, columns the prediction.
"""
from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts from class indices ``pred`` and ``target`` of the same shape.

    Raises:
        ValueError: shapes differ, or an index is outside ``0..num_classes-1``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} has class indices outside 0..{num_classes - 1}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes).cpu()


def accuracy(cm: torch.Tensor) -> float:
    """Fraction of items (pixel accuracy for segmentation) on the diagonal."""
    return (cm.diag().sum().double() / cm.sum()).item()


def per_class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """``(num_classes,)`` float64: for each true class, the fraction predicted correctly (recall); NaN if absent."""
    return cm.diag().double() / cm.sum(dim=1).double()


def iou_per_class(cm: torch.Tensor) -> torch.Tensor:
    """``(num_classes,)`` float64 intersection over union ``TP / (TP + FP + FN)``.

    NaN for a class that is neither in the truth nor in the prediction (Ignite's ``IoU`` gives 0 there instead).
    """
    tp = cm.diag().double()
    return tp / (cm.sum(dim=0).double() + cm.sum(dim=1).double() - tp)


def mean_iou(cm: torch.Tensor) -> float:
    """Mean of :func:`iou_per_class` over the classes where it is defined (NaN skipped)."""
    return torch.nanmean(iou_per_class(cm)).item()


class ConfusionMeter:
    """Accumulates a confusion matrix over batches: ``update(logits, target)``, then ``cm`` / the metric methods.

    ``logits``: ``(batch, num_classes, ...)``; ``target``: ``(batch, ...)`` class indices.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.cm += confusion_matrix(logits.argmax(dim=1), target, self.num_classes)

    def results(self) -> dict[str, float | list[float]]:
        """``{"accuracy", "iou" (per class), "miou"}``."""
        return {"accuracy": accuracy(self.cm), "iou": iou_per_class(self.cm).tolist(), "miou": mean_iou(self.cm)}
