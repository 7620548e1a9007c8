"""Segmentation metrics over a whole validation set, with bootstrap confidence intervals.

``SegmentationMetrics`` is a torchmetrics ``Metric``: under torch.distributed its state is
gathered across processes by torchmetrics. The state is one confusion matrix per validation
image, with the image's index, so that

- the metrics are computed from the confusion matrix of the whole set (not averaged per batch,
  which the report did and which is biased), with torchmetrics' definitions of micro/macro
  accuracy, IoU (Jaccard) and F1 for multiclass data with an ignore index (tests hold them to
  torchmetrics' own classes);
- 95% confidence intervals come from a percentile bootstrap over validation images: B resamples
  of the images with replacement, each giving the metrics of its summed confusion matrix. Images,
  not pixels, are the independent units (pixels of one image are strongly correlated), so this
  is wider and more honest than the report's normal approximation for proportions over pixels;
- results do not depend on how images were split across processes or batches: images are sorted
  by index, and duplicates (DistributedSampler pads the last batch) are dropped.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

METRICS = ("micro_accuracy", "macro_accuracy", "micro_iou", "macro_iou", "micro_f1", "macro_f1")
TITLES = {"micro_accuracy": "Micro accuracy", "macro_accuracy": "Macro accuracy", "micro_iou": "Micro IoU",
          "macro_iou": "Mean IoU", "micro_f1": "Micro F1", "macro_f1": "Macro F1"}
#: The order of report columns: mean IoU (macro IoU, the field's headline number) first.
COLUMNS = ("macro_iou", *(m for m in METRICS if m != "macro_iou"))


def scores_from_confusion(conf: torch.Tensor) -> dict[str, torch.Tensor]:
    """The six metrics of confusion matrices ``conf`` (..., C, C), rows = target, cols = prediction.

    Macro averages leave out classes that appear in neither targets nor predictions, as
    torchmetrics does; a class that is predicted but never present counts with score 0.
    """
    conf = conf.double()
    tp = conf.diagonal(dim1=-2, dim2=-1)
    support = conf.sum(-1)  # tp + fn
    predicted = conf.sum(-2)  # tp + fp
    fp = predicted - tp
    fn = support - tp
    total = conf.sum((-2, -1))
    present = (tp + fp + fn) > 0
    n_present = present.sum(-1).clamp(min=1)

    def safe(num, den):
        return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))

    def macro(per_class):
        return (per_class * present).sum(-1) / n_present

    micro = safe(tp.sum(-1), total)  # accuracy = micro F1 for single-label multiclass
    return {
        "micro_accuracy": micro,
        "macro_accuracy": macro(safe(tp, support)),
        "micro_iou": safe(tp.sum(-1), (tp + fp + fn).sum(-1)),
        "macro_iou": macro(safe(tp, tp + fp + fn)),
        "micro_f1": micro,
        "macro_f1": macro(safe(2 * tp, 2 * tp + fp + fn)),
    }


def per_class_f1(conf: torch.Tensor) -> torch.Tensor:
    """F1 of each class of a confusion matrix (C, C), rows = target: 2 tp / (2 tp + fp + fn); NaN for a
    class that is in neither targets nor predictions."""
    conf = conf.double()
    tp = conf.diagonal()
    den = conf.sum(0) + conf.sum(1)
    return torch.where(den > 0, 2 * tp / den.clamp(min=1e-300), torch.full_like(tp, float("nan")))


def bootstrap_weights(n: int, resamples: int, generator: torch.Generator) -> torch.Tensor:
    """(resamples, n) float64 counts: how often each of n images is drawn in each bootstrap resample
    (n draws with replacement). A resample's confusion is ``weights @ per_image_confusions``."""
    draws = torch.randint(0, n, (resamples, n), generator=generator)
    return torch.zeros(resamples, n, dtype=torch.double).scatter_add_(
        1, draws, torch.ones(resamples, n, dtype=torch.double))


class SegmentationMetrics(Metric):
    """Accuracy, IoU and F1, micro and macro, with 95% bootstrap intervals over images.

    Args:
        num_classes: C, including background.
        ignore_index: target value left out of every count.
        bootstrap: number of bootstrap resamples for the intervals.
        seed: seed of the bootstrap resampling (intervals are deterministic).

    ``update(pred, target, index=None)`` takes (B, H, W) integer tensors of predicted and target
    classes, and optionally the (B,) dataset indices of the images. ``compute()`` returns the six
    metrics as floats in [0, 1]; ``compute_intervals()`` returns for each {"value", "low", "high"}.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int = 255, bootstrap: int = 1000, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.bootstrap = bootstrap
        self.seed = seed
        self.add_state("confusion", default=[], dist_reduce_fx="cat")  # (images, C * C) int64
        self.add_state("index", default=[], dist_reduce_fx="cat")  # (images,) int64
        self._seen = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor, index: torch.Tensor | None = None) -> None:
        if pred.shape != target.shape or pred.dim() != 3:
            raise ValueError(f"pred and target must both be (B, H, W), got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        c = self.num_classes
        b = pred.shape[0]
        pred = pred.long().reshape(b, -1)
        target = target.long().reshape(b, -1)
        valid = target != self.ignore_index
        bad_target = valid & ((target < 0) | (target >= c))
        if bad_target.any():
            raise ValueError(f"target holds values outside 0..{c - 1} that are not ignore_index "
                             f"{self.ignore_index}: {sorted(target[bad_target].unique().tolist())[:5]}")
        if ((pred < 0) | (pred >= c))[valid].any():
            raise ValueError(f"pred holds values outside 0..{c - 1}")
        image = torch.arange(b, device=pred.device).unsqueeze(1).expand_as(pred)
        flat = (image * (c * c) + target * c + pred)[valid]
        counts = torch.bincount(flat, minlength=b * c * c).reshape(b, c * c)
        if index is None:
            index = torch.arange(self._seen, self._seen + b, device=pred.device)
        self._seen += b
        self.confusion.append(counts)
        self.index.append(index.to(pred.device).long().reshape(b))

    def per_image(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices (N,), confusion matrices (N, C, C)) of the images seen, sorted by index, repeats dropped."""
        conf = self.confusion
        idx = self.index
        if isinstance(conf, list):
            if not conf:
                return torch.zeros(0, dtype=torch.long), torch.zeros(0, self.num_classes, self.num_classes,
                                                                       dtype=torch.long)
            conf, idx = torch.cat(conf), torch.cat(idx)
        order = torch.argsort(idx, stable=True)
        conf, idx = conf[order], idx[order]
        keep = torch.ones_like(idx, dtype=torch.bool)
        keep[1:] = idx[1:] != idx[:-1]  # drop repeats of an index (DistributedSampler padding)
        return idx[keep].cpu(), conf[keep].reshape(-1, self.num_classes, self.num_classes).cpu()

    def _per_image(self) -> torch.Tensor:
        return self.per_image()[1]

    def confusion_matrix(self) -> torch.Tensor:
        """(C, C) confusion matrix of the whole set, rows = target."""
        return self._per_image().sum(0)

    def compute(self) -> dict[str, float]:
        scores = scores_from_confusion(self.confusion_matrix())
        return {k: float(scores[k]) for k in METRICS}

    def compute_intervals(self, level: float = 0.95) -> dict[str, dict[str, float]]:
        per_image = self._per_image()
        n = per_image.shape[0]
        point = scores_from_confusion(per_image.sum(0))
        out = {k: {"value": float(point[k]), "low": float(point[k]), "high": float(point[k])} for k in METRICS}
        if n < 2 or self.bootstrap < 1:
            return out
        g = torch.Generator().manual_seed(self.seed)
        flat = per_image.reshape(n, -1).double()
        alpha = (1.0 - level) / 2.0
        samples = {k: [] for k in METRICS}
        for start in range(0, self.bootstrap, 250):  # resample in blocks to bound memory
            size = min(250, self.bootstrap - start)
            conf = (bootstrap_weights(n, size, g) @ flat).reshape(size, self.num_classes, self.num_classes)
            for k, v in scores_from_confusion(conf).items():
                samples[k].append(v)
        for k in METRICS:
            v = torch.cat(samples[k])
            out[k]["low"] = float(torch.quantile(v, alpha))
            out[k]["high"] = float(torch.quantile(v, 1.0 - alpha))
        return out

    def reset(self) -> None:
        super().reset()
        self._seen = 0
