"""Review list: the objects of a segmentation the model is least sure about, first.

:func:`review_objects` runs the model under test-time augmentation
(:func:`cellsight.core.curation.uncertainty.tta_predict`) on every frame, turns the spread and
entropy of its foreground / boundary maps into a per-pixel uncertainty, and ranks the
objects of a label image by it (:func:`cellsight.core.curation.uncertainty.rank_objects`).
"""

from dataclasses import dataclass

import numpy as np

from cellsight.config.instances import InstancePredictConfig
from cellsight.core.curation.uncertainty import (
    ReviewItem,
    frame_uncertainty,
    pixel_uncertainty,
    rank_objects,
    tta_predict,
)
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.core.segmentation.instance_model import InstanceModel, predict_instance_maps


@dataclass
class ReviewResult:
    """Objects sorted by uncertainty (highest first) and one score per frame.

    Attributes
    ----------
    items : list of ReviewItem
        ``frame`` is the time index for time series, else None; ``centroid`` is in the
        frame's pixel coordinates.
    frame_scores : list of float
        Mean uncertainty over the foreground of each frame (one entry for a single image).
    uncertainty : numpy.ndarray
        Per-pixel uncertainty in [0, 1], the labels' shape.
    """

    items: list[ReviewItem]
    frame_scores: list[float]
    uncertainty: np.ndarray


def _maps_predictor(model: InstanceModel, config: InstancePredictConfig, should_stop):
    def predict(image: np.ndarray) -> np.ndarray:
        maps = predict_instance_maps(model, image, config, should_stop=should_stop)
        return np.stack([maps.foreground, maps.boundary])

    return predict


def review_objects(
    model: InstanceModel,
    image: np.ndarray,
    labels: np.ndarray,
    config: InstancePredictConfig | None = None,
    n_views: int = 4,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> ReviewResult:
    """Rank the objects of ``labels`` by how much the model's augmented predictions disagree.

    Parameters
    ----------
    model : InstanceModel
    image : numpy.ndarray
        As for :func:`~cellsight.core.segmentation.instance_model.predict_instance_maps` in
        ``config.mode`` (2d, 3d, or t = a time series, reviewed frame by frame).
    labels : numpy.ndarray
        Instance labels of the image's shape (a prediction or corrected labels).
    config : InstancePredictConfig, optional
        Mode, diameter and device, as used for the prediction.
    n_views : int
        Flips / rotations per frame (2..6).
    progress, should_stop : callable
        A stop raises :class:`~cellsight.core.progress.Cancelled`.

    Returns
    -------
    ReviewResult

    Examples
    --------
    A clear disc and a faint, ragged one: the faint one comes first in the list.

    >>> from cellsight.core.segmentation.instance_model import load_builtin
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:96, :96]
    >>> clear = (yy - 30) ** 2 + (xx - 30) ** 2 < 225
    >>> faint = ((yy - 64) ** 2 + (xx - 64) ** 2 < 225) & (rng.random((96, 96)) < 0.6)
    >>> image = (clear + 0.3 * faint + 0.05 * rng.random((96, 96))).astype(np.float32)
    >>> labels = (clear + 2 * ((yy - 64) ** 2 + (xx - 64) ** 2 < 225)).astype(np.uint16)
    >>> review = review_objects(load_builtin(), image, labels, InstancePredictConfig(diameter=30))
    >>> [item.label for item in review.items]
    [2, 1]
    """
    config = config or InstancePredictConfig()
    image, labels = np.asarray(image), np.asarray(labels)
    if image.shape != labels.shape:
        raise ValueError(f"Image {image.shape} and labels {labels.shape} differ in shape.")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"Labels must be integers; got dtype {labels.dtype}.")
    timed = config.mode == "t"
    frames = image if timed else image[None]
    frame_labels = labels if timed else labels[None]
    one = config.model_copy(update={"mode": f"{frames.ndim - 1}d", "estimate_diameter": False})
    if config.estimate_diameter:
        from cellsight.core.segmentation.instance_model import estimate_diameter

        one.diameter = estimate_diameter(model, frames[0], one, should_stop=should_stop)
    predict = _maps_predictor(model, one, should_stop)
    items, scores, maps = [], [], np.zeros(labels.shape, np.float32)
    for t, frame in enumerate(frames):
        if should_stop():
            raise Cancelled()
        views = tta_predict(predict, frame, n_views, should_stop=should_stop)
        unc = pixel_uncertainty(views)
        (maps[t] if timed else maps)[...] = unc
        items += rank_objects(frame_labels[t], unc, frame=t if timed else None)
        scores.append(frame_uncertainty(unc, frame_labels[t] > 0))
        progress(ProgressEvent(t + 1, len(frames), "uncertainty"))
    items.sort(key=lambda it: it.score, reverse=True)
    return ReviewResult(items, scores, maps)
