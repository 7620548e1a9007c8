"""SegmentationMetrics against hand-computed confusion matrices and torchmetrics' own classes."""

import pytest
import torch

from fakeballoons import SegmentationMetrics
from fakeballoons.train.metrics import METRICS, scores_from_confusion


def test_hand_computed():
    # rows = target, cols = pred. Pixels: (0,0) (0,1) (1,1) (1,1) (2,0), one ignored.
    target = torch.tensor([[[0, 0, 1], [1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1], [1, 0, 2]]])
    m = SegmentationMetrics(3)
    m.update(pred, target)
    assert m.confusion_matrix().tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    r = m.compute()
    # tp = (1, 2, 0), support = (2, 2, 1), predicted = (2, 3, 0), 5 pixels
    assert r["micro_accuracy"] == pytest.approx(3 / 5)
    assert r["macro_accuracy"] == pytest.approx((1 / 2 + 2 / 2 + 0 / 1) / 3)
    assert r["micro_iou"] == pytest.approx(3 / 7)  # sum tp / sum (tp + fp + fn) = 3 / (3 + 3 + 1)
    assert r["macro_iou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert r["micro_f1"] == pytest.approx(3 / 5)
    assert r["macro_f1"] == pytest.approx((2 / 4 + 4 / 5 + 0) / 3)


def test_class_absent_from_targets():
    # class 3 never occurs; class 2 is predicted but never present (score 0, counted)
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 2, 1, 1]]])
    m = SegmentationMetrics(4)
    m.update(pred, target)
    r = m.compute()
    assert r["macro_accuracy"] == pytest.approx((1 / 2 + 1 + 0) / 3)  # classes 0, 1, 2; not 3
    assert r["macro_iou"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert r["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert r["micro_accuracy"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("trial", range(4))
def test_equals_torchmetrics(trial):
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassJaccardIndex

    g = torch.Generator().manual_seed(trial)
    c = 5
    target = torch.randint(0, c, (6, 9, 11), generator=g)
    pred = torch.randint(0, c, (6, 9, 11), generator=g)
    target[target == 3] = 0
    if trial >= 1:
        pred[pred == 3] = 1
    if trial >= 2:
        target[target == 4] = 0
    target[:, :2, :3] = 255
    ours = SegmentationMetrics(c)
    ours.update(pred[:2], target[:2])
    ours.update(pred[2:], target[2:])
    got = ours.compute()
    for name, cls in (("accuracy", MulticlassAccuracy), ("iou", MulticlassJaccardIndex), ("f1", MulticlassF1Score)):
        for avg in ("micro", "macro"):
            ref = cls(c, average=avg, ignore_index=255)
            ref.update(pred, target)
            assert got[f"{avg}_{name}"] == pytest.approx(float(ref.compute()), abs=1e-6)


def test_intervals():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (40, 8, 8), generator=g)
    pred = torch.where(torch.rand(40, 8, 8, generator=g) < 0.7, target, torch.randint(0, 3, (40, 8, 8), generator=g))
    m = SegmentationMetrics(3, bootstrap=500)
    m.update(pred, target)
    ci = m.compute_intervals()
    assert ci == m.compute_intervals()  # deterministic
    for k in METRICS:
        assert ci[k]["low"] <= ci[k]["value"] <= ci[k]["high"]
        assert ci[k]["high"] - ci[k]["low"] > 0
    few = SegmentationMetrics(3, bootstrap=500)
    few.update(pred[:5], target[:5])
    wide = few.compute_intervals()
    assert wide["macro_f1"]["high"] - wide["macro_f1"]["low"] > ci["macro_f1"]["high"] - ci["macro_f1"]["low"]
    same = SegmentationMetrics(3, bootstrap=200)
    same.update(pred[:1].repeat(10, 1, 1), target[:1].repeat(10, 1, 1))
    flat = same.compute_intervals()["micro_f1"]
    assert flat["low"] == pytest.approx(flat["value"]) == pytest.approx(flat["high"])


def test_order_and_duplicates_do_not_matter():
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 4, (10, 6, 6), generator=g)
    pred = torch.randint(0, 4, (10, 6, 6), generator=g)
    a = SegmentationMetrics(4, bootstrap=100)
    a.update(pred, target, torch.arange(10))
    b = SegmentationMetrics(4, bootstrap=100)
    perm = torch.randperm(10, generator=g)
    b.update(pred[perm[:6]], target[perm[:6]], perm[:6])
    b.update(pred[perm[6:]], target[perm[6:]], perm[6:])
    b.update(pred[:1], target[:1], torch.tensor([0]))  # a padded repeat, as DistributedSampler adds
    assert a.compute_intervals() == b.compute_intervals()


def test_bad_inputs():
    m = SegmentationMetrics(3)
    with pytest.raises(ValueError, match="outside 0..2"):
        m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        m.update(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    m.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 255))  # all ignored
    assert m.compute()["micro_accuracy"] == 0.0


def test_scores_are_batched_over_leading_dims():
    conf = torch.tensor([[[3, 1], [0, 4]], [[1, 0], [0, 1]]])
    s = scores_from_confusion(conf)
    assert s["micro_accuracy"].tolist() == pytest.approx([7 / 8, 1.0])


def _records(accuracies, seed):
    """One per-image confusion record per seed: image i has 100 target pixels of each of two
    classes, a share ``accuracies[s][i]`` of them right."""
    records = []
    for s, acc in enumerate(accuracies):
        g = torch.Generator().manual_seed(seed + s)
        acc = torch.as_tensor(acc, dtype=torch.double).clamp(0, 1)
        right = (acc * 100).round() + torch.randint(-3, 4, acc.shape, generator=g)
        right = right.clamp(0, 100)
        conf = torch.zeros(len(acc), 2, 2, dtype=torch.long)
        conf[:, 0, 0] = conf[:, 1, 1] = right.long()
        conf[:, 0, 1] = conf[:, 1, 0] = (100 - right).long()
        records.append({"index": torch.arange(len(acc)), "confusion": conf})
    return records


def test_the_recovered_share_of_a_gain():
    from fakeballoons.errors import UserError
    from fakeballoons.train.report import recovered_share

    n = 40
    base = torch.linspace(0.4, 0.7, n)
    scratch = _records([base] * 3, 0)
    reference = _records([base + 0.2] * 3, 10)
    half = _records([base + 0.1] * 3, 20)
    same = recovered_share(reference, reference, scratch, resamples=200)
    assert same["value"] == pytest.approx(1.0) and same["low"] == pytest.approx(1.0) == same["high"]
    none = recovered_share(scratch, reference, scratch, resamples=200)
    assert none["value"] == pytest.approx(0.0) and none["low"] == pytest.approx(0.0) == none["high"]
    mid = recovered_share(half, reference, scratch, resamples=500)
    assert 0.3 < mid["value"] < 0.7 and mid["low"] < mid["value"] < mid["high"] and mid["undefined"] == 0
    assert mid == recovered_share(half, reference, scratch, resamples=500)  # deterministic
    with pytest.raises(UserError, match="seeds"):
        recovered_share(half[:2], reference, scratch)
    shifted = [{**r, "index": r["index"] + 1} for r in half]
    with pytest.raises(UserError, match="different validation images"):
        recovered_share(shifted, reference, scratch)
