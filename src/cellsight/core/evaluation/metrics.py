"""Accuracy measures: instance matching (AP at an IoU threshold), IoU, PSNR."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MatchResult:
    """Counts from one-to-one IoU matching of predicted to true objects."""

    tp: int
    fp: int
    fn: int
    matched_ious: tuple[float, ...]

    @property
    def ap(self) -> float:
        """TP / (TP + FP + FN), the CTC / DSB2018 "average precision" at one threshold."""
        denom = self.tp + self.fp + self.fn
        return self.tp / denom if denom else 1.0

    @property
    def mean_matched_iou(self) -> float:
        """Mean IoU of the matched pairs (0 if none)."""
        return float(np.mean(self.matched_ious)) if self.matched_ious else 0.0

    def __add__(self, other: "MatchResult") -> "MatchResult":
        """Pool counts (micro-average over images)."""
        return MatchResult(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.matched_ious + other.matched_ious,
        )


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU between every true and every predicted object.

    Returns
    -------
    iou : ndarray (n_true, n_pred)
    true_ids, pred_ids : ndarray
        The label ids of the rows and columns.
    """
    true = np.asarray(true).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if true.shape != pred.shape:
        raise ValueError("true and pred label images must have the same shape.")
    true_ids, t_inv = np.unique(true, return_inverse=True)
    pred_ids, p_inv = np.unique(pred, return_inverse=True)
    overlap = np.zeros((len(true_ids), len(pred_ids)), np.int64)
    np.add.at(overlap, (t_inv, p_inv), 1)
    t_sizes = overlap.sum(1, keepdims=True)
    p_sizes = overlap.sum(0, keepdims=True)
    iou = overlap / np.maximum(t_sizes + p_sizes - overlap, 1)
    keep_t = true_ids != 0
    keep_p = pred_ids != 0
    return iou[np.ix_(keep_t, keep_p)], true_ids[keep_t], pred_ids[keep_p]


def match_instances(true: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> MatchResult:
    """One-to-one matching of objects with IoU >= ``threshold`` (Hungarian assignment).

    Examples
    --------
    >>> a = np.zeros((4, 4), int); a[:2, :2] = 1
    >>> match_instances(a, a).ap
    1.0
    """
    from scipy.optimize import linear_sum_assignment

    if np.shape(true) != np.shape(pred):
        raise ValueError(
            f"Shapes differ: ground truth {np.shape(true)} vs prediction {np.shape(pred)}."
        )
    iou, t_ids, p_ids = iou_matrix(true, pred)
    if iou.size == 0:
        return MatchResult(0, len(p_ids), len(t_ids), ())
    cost = np.where(iou >= threshold, -iou, 0.0)
    rows, cols = linear_sum_assignment(cost)
    ok = iou[rows, cols] >= threshold
    matched = tuple(float(v) for v in iou[rows[ok], cols[ok]])
    tp = int(ok.sum())
    return MatchResult(tp, len(p_ids) - tp, len(t_ids) - tp, matched)


def foreground_iou(true: np.ndarray, pred: np.ndarray) -> float:
    """IoU of two binary masks (1.0 if both are empty)."""
    true = np.asarray(true, bool)
    pred = np.asarray(pred, bool)
    union = np.logical_or(true, pred).sum()
    return float(np.logical_and(true, pred).sum() / union) if union else 1.0


def psnr(reference: np.ndarray, image: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB with an explicit ``data_range``."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(
        peak_signal_noise_ratio(
            np.asarray(reference, np.float64), np.asarray(image, np.float64), data_range=data_range
        )
    )


def match_in_region(
    true: np.ndarray, pred: np.ndarray, region: np.ndarray, threshold: float = 0.5
) -> MatchResult:
    """:func:`match_instances` for sparsely annotated images.

    Only predicted objects lying mostly (>= half their pixels) inside ``region``, where
    the ground truth is complete, are counted; ``true`` holds the labelled objects.
    """
    pred = np.asarray(pred).astype(np.int64, copy=False)
    region = np.asarray(region, bool)
    if region.shape != pred.shape:
        raise ValueError(f"region shape {region.shape} differs from pred {pred.shape}.")
    sizes = np.bincount(pred.ravel())
    inside = np.bincount(pred.ravel(), weights=region.ravel(), minlength=len(sizes))
    keep = inside >= 0.5 * np.maximum(sizes, 1)
    keep[0] = False
    return match_instances(true, np.where(keep[pred], pred, 0), threshold)
