"""Uncertainty for review: where test-time augmentations disagree, and how unsure the model is.

``tta_predict`` runs any probability predictor under flips / 90° rotations and maps the
outputs back; ``pixel_uncertainty`` combines their disagreement with the entropy of their
mean; ``rank_objects`` turns that into a review list, most uncertain object first.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cellsight.core.progress import ProgressEvent, never_stop, no_progress


def dihedral_views(n: int):
    """(forward, inverse) pairs acting on the last two axes: flips, 90° rotations, transposes.

    The first is the identity; all 8 together are the symmetries of a square.
    """
    pairs = [
        (lambda a: a, lambda a: a),
        (lambda a: np.flip(a, -1), lambda a: np.flip(a, -1)),
        (lambda a: np.flip(a, -2), lambda a: np.flip(a, -2)),
        (lambda a: np.rot90(a, 1, (-2, -1)), lambda a: np.rot90(a, -1, (-2, -1))),
        (lambda a: np.rot90(a, 2, (-2, -1)), lambda a: np.rot90(a, -2, (-2, -1))),
        (lambda a: np.rot90(a, 3, (-2, -1)), lambda a: np.rot90(a, -3, (-2, -1))),
        (lambda a: np.swapaxes(a, -1, -2), lambda a: np.swapaxes(a, -1, -2)),
        (
            lambda a: np.flip(np.swapaxes(a, -1, -2), (-2, -1)),
            lambda a: np.swapaxes(np.flip(a, (-2, -1)), -1, -2),
        ),
    ]
    if not 1 <= n <= len(pairs):
        raise ValueError(f"Test-time augmentation needs 1..{len(pairs)} views; got {n}.")
    return pairs[:n]


def _transforms(n: int):
    if n < 2:
        raise ValueError(f"Uncertainty needs 2..8 test-time augmentation views; got {n}.")
    return dihedral_views(n)


def tta_predict(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    n_views: int = 4,
    progress=no_progress,
    should_stop=never_stop,
) -> np.ndarray:
    """Predict under ``n_views`` flips / rotations and undo them.

    Parameters
    ----------
    predict : callable
        ``image -> probabilities`` with shape (C, *image.shape).
    image : numpy.ndarray
        2D image, or 3D (rotations act on the last two axes).

    Returns
    -------
    numpy.ndarray
        (n_views, C, *image.shape) probabilities.
    """
    views = []
    for k, (fwd, inv) in enumerate(_transforms(n_views)):
        if should_stop():
            break
        out = np.asarray(predict(np.ascontiguousarray(fwd(image))))
        views.append(np.ascontiguousarray(inv(out)))
        progress(ProgressEvent(k + 1, n_views, "test-time augmentation"))
    if len(views) < 2:
        raise ValueError("Uncertainty needs at least two augmented predictions.")
    return np.stack(views)


def pixel_uncertainty(views: np.ndarray) -> np.ndarray:
    """Per-pixel uncertainty in [0, 1] from (views, C, *spatial) probabilities.

    The mean of (a) twice the standard deviation across views and (b) the binary
    entropy of the mean probability, averaged over channels.
    """
    views = np.asarray(views, np.float32)
    if views.ndim < 4:
        raise ValueError(f"Expected (views, channels, *spatial); got shape {views.shape}.")
    mean = np.clip(views.mean(0), 1e-6, 1 - 1e-6)
    entropy = -(mean * np.log2(mean) + (1 - mean) * np.log2(1 - mean))
    disagreement = np.clip(2 * views.std(0), 0, 1)
    return (0.5 * (entropy + disagreement)).mean(0)


@dataclass(frozen=True)
class ReviewItem:
    """One object to review: where it is and how uncertain the model was."""

    label: int
    frame: int | None
    centroid: tuple[float, ...]
    score: float


def rank_objects(
    labels: np.ndarray, uncertainty: np.ndarray, frame: int | None = None, ring: int = 2
) -> list[ReviewItem]:
    """Rank objects by the mean uncertainty over the object and a ``ring``-pixel rim.

    The rim matters: a missed split or a wrong border shows up at the object's edge.
    """
    if labels.shape != uncertainty.shape:
        raise ValueError(f"Labels {labels.shape} and uncertainty {uncertainty.shape} differ.")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size == 0:
        return []
    grown = labels
    if ring > 0:
        from skimage.segmentation import expand_labels

        grown = expand_labels(labels, ring)
    scores = ndi.mean(uncertainty, grown, ids)
    centroids = ndi.center_of_mass(np.ones_like(labels), labels, ids)
    items = [
        ReviewItem(int(i), frame, tuple(float(v) for v in c), float(s))
        for i, c, s in zip(ids, centroids, scores, strict=True)
    ]
    return sorted(items, key=lambda it: it.score, reverse=True)


def frame_uncertainty(uncertainty: np.ndarray, foreground: np.ndarray | None = None) -> float:
    """One number per frame: mean uncertainty (over the foreground when given)."""
    if foreground is not None and foreground.any():
        return float(uncertainty[foreground].mean())
    return float(uncertainty.mean())
