"""Instance post-processing: class probabilities -> separated objects (2D, 3D, time).

The model's class probabilities give a foreground map (interior + boundary) and a
boundary map (:func:`maps_from_probabilities`); a seeded watershed
(:func:`watershed_instances`) separates touching objects, frame by frame for time series
(:func:`watershed_series`).
"""

import numpy as np
from scipy import ndimage as ndi

from cellsight.config.instances import InstancePostConfig
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.core.segmentation.instance_targets import _sampling


def maps_from_probabilities(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and boundary maps from class probabilities.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(3, *spatial)``: background, interior, boundary (softmax outputs).

    Returns
    -------
    foreground, boundary : numpy.ndarray of float32
        ``p_interior + p_boundary`` and ``p_boundary``.
    """
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.ndim < 3 or probabilities.shape[0] != 3:
        raise ValueError(
            "Need (3, *spatial) probabilities of background, interior and boundary; "
            f"got shape {probabilities.shape}."
        )
    return probabilities[1] + probabilities[2], probabilities[2].copy()


def _check_maps(foreground: np.ndarray, boundary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    foreground = np.asarray(foreground, np.float32)
    boundary = np.asarray(boundary, np.float32)
    if foreground.shape != boundary.shape:
        raise ValueError(
            f"foreground {foreground.shape} and boundary {boundary.shape} maps differ in shape."
        )
    if not (np.all(np.isfinite(foreground)) and np.all(np.isfinite(boundary))):
        raise ValueError("The probability maps contain NaN or infinite values.")
    return foreground, boundary


def _keep_large(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects smaller than ``min_size`` and make ids consecutive (int32)."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    lut = np.zeros(len(sizes), np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]


def watershed_instances(
    foreground: np.ndarray, boundary: np.ndarray, config: InstancePostConfig | None = None
) -> np.ndarray:
    """Separate objects by a seeded watershed on the boundary map (2D or 3D).

    seeds = connected components of ``foreground - boundary > seed_threshold``;
    mask = ``foreground > mask_threshold``; the seeds grow over the boundary map
    inside the mask. Mask regions no seed reaches become objects of their own.
    Objects under ``min_size`` are removed and ids made consecutive.

    Parameters
    ----------
    foreground, boundary : numpy.ndarray
        Probability maps of one 2D image or 3D stack (same shape). Not modified.
    config : InstancePostConfig, optional
        Thresholds, minimum size, smoothing and anisotropy.

    Returns
    -------
    numpy.ndarray of int32
        Labels, 0 = background, ids 1..N.

    Examples
    --------
    >>> fg = np.zeros((9, 9), np.float32); fg[1:8, 1:4] = fg[1:8, 5:8] = 1
    >>> watershed_instances(fg, np.zeros_like(fg), InstancePostConfig(min_size=1)).max()
    np.int32(2)
    """
    from skimage.segmentation import watershed

    config = config or InstancePostConfig()
    foreground, boundary = _check_maps(foreground, boundary)
    if foreground.ndim not in (2, 3):
        raise ValueError(
            f"watershed_instances needs one 2D or 3D map; got shape {foreground.shape} "
            "(use watershed_series for time series)."
        )
    if config.smoothing > 0:
        sigma = np.array(_sampling(foreground.ndim, config.anisotropy))
        sigma = config.smoothing / sigma
        foreground = ndi.gaussian_filter(foreground, sigma)
        boundary = ndi.gaussian_filter(boundary, sigma)
    mask = foreground > config.mask_threshold
    seeds, n = ndi.label(((foreground - boundary) > config.seed_threshold) & mask)
    labels = watershed(boundary, seeds, mask=mask) if n else np.zeros(mask.shape, np.int32)
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + n, labels)
    return _keep_large(labels.astype(np.int64, copy=False), config.min_size)


def watershed_series(
    foreground: np.ndarray,
    boundary: np.ndarray,
    config: InstancePostConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Apply :func:`watershed_instances` frame by frame to ``(T, ...)`` maps.

    Ids are consecutive within each frame (frames are independent).

    Raises
    ------
    Cancelled
        If ``should_stop()`` turns True; ``partial`` holds the finished frames.
    """
    foreground, boundary = _check_maps(foreground, boundary)
    if foreground.ndim not in (3, 4):
        raise ValueError(f"Need (T, Y, X) or (T, Z, Y, X) maps; got shape {foreground.shape}.")
    out = np.zeros(foreground.shape, np.int32)
    total = foreground.shape[0]
    for t in range(total):
        if should_stop():
            raise Cancelled(partial=out[:t])
        out[t] = watershed_instances(foreground[t], boundary[t], config)
        progress(ProgressEvent(t + 1, total, "watershed"))
    return out
