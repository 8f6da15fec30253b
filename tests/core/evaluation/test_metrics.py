import numpy as np
import pytest

from cellsight.core.evaluation.metrics import foreground_iou, match_instances, psnr


def _squares():
    gt = np.zeros((20, 20), int)
    gt[2:8, 2:8] = 1
    gt[10:16, 10:16] = 2
    return gt


def test_perfect_and_shifted_matches():
    gt = _squares()
    assert match_instances(gt, gt).ap == 1.0
    pred = np.zeros_like(gt)
    pred[2:8, 3:9] = 5  # IoU 30/42 = 0.71
    res = match_instances(gt, pred, 0.5)
    assert (res.tp, res.fp, res.fn) == (1, 0, 1)
    assert res.ap == pytest.approx(0.5)
    assert match_instances(gt, pred, 0.75).tp == 0


def test_one_to_one_and_micro_average():
    gt = _squares()
    merged = (gt > 0).astype(int)  # one object covering both
    res = match_instances(gt, merged, 0.3)
    assert res.tp <= 1
    pooled = match_instances(gt, gt) + res
    assert pooled.tp == 2 + res.tp


def test_shape_mismatch_is_clear():
    with pytest.raises(ValueError, match="Shapes differ"):
        match_instances(np.zeros((4, 4)), np.zeros((5, 5)))


def test_foreground_iou_and_psnr():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[:1] = True
    assert foreground_iou(a, b) == pytest.approx(0.5)
    ref = np.full((8, 8), 100.0)
    assert psnr(ref, ref + 1, 255) == pytest.approx(20 * np.log10(255), rel=1e-6)
