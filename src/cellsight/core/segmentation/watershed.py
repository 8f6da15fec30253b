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


def shape_seeds(
    interior: np.ndarray, depth: float, sampling: tuple[float, ...] | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Split each connected region of ``interior`` at its necks: one seed per shape peak.

    The distance of every pixel to the region's edge is smoothed (sigma = 0.2 x the
    region's half-width, i.e. its largest distance) and its regional maxima deeper than
    ``depth`` x the half-width become the seeds; a region without such a maximum is one
    seed. Everything is measured per region, so the result for one region does not depend
    on the rest of the image (blockwise runs stay seam-free).

    Returns
    -------
    seeds : numpy.ndarray of int32
        Seed ids 1..n (0 elsewhere).
    n : int
    distance : numpy.ndarray of float32
        Each pixel's distance to its region's edge divided by the region's half-width
        (0 outside the regions, 1 at the deepest point of every region).

    Examples
    --------
    Two overlapping discs (one region, a neck between them) give two seeds:

    >>> yy, xx = np.mgrid[:40, :60]
    >>> two = ((yy - 20) ** 2 + (xx - 18) ** 2 < 144) | ((yy - 20) ** 2 + (xx - 40) ** 2 < 144)
    >>> shape_seeds(two, 0.05)[1]
    2
    """
    from skimage.morphology import h_maxima

    interior = np.asarray(interior, bool)
    regions, n_regions = ndi.label(interior)
    if not n_regions:
        return regions.astype(np.int32), 0, np.zeros(interior.shape, np.float32)
    distance = ndi.distance_transform_edt(interior, sampling=sampling).astype(np.float32)
    half_width = np.asarray(ndi.maximum(distance, regions, np.arange(n_regions + 1)), np.float32)
    half_width[0] = 1.0
    half_width = np.maximum(half_width, 1e-6)
    per_pixel = half_width[regions]
    normalized = np.where(interior, distance / per_pixel, 0.0).astype(np.float32)
    # per region, on its bounding box: smooth (sigma = 0.2 x half-width, >= 0.5 px), then
    # the regional maxima deeper than ``depth``
    steps = np.asarray(sampling if sampling is not None else (1.0,) * interior.ndim, float)
    peaks = np.zeros(interior.shape, bool)
    for index, box in enumerate(ndi.find_objects(regions), start=1):
        if box is None:
            continue
        sigma = max(0.2 * float(half_width[index]), 0.5) / steps
        pad = np.ceil(3 * sigma).astype(int) + 1
        box = tuple(slice(max(0, b.start - p), min(n, b.stop + p))
                    for b, p, n in zip(box, pad, interior.shape, strict=True))
        own = regions[box] == index
        smooth = ndi.gaussian_filter(np.where(own, normalized[box], 0.0), sigma)
        found = h_maxima(smooth, depth) if depth > 0 else (
            smooth == ndi.maximum_filter(smooth, size=3))
        peaks[box] |= found.astype(bool) & own
    seeds, n = ndi.label(peaks)
    # regions no peak fell in (flat or tiny) are a seed of their own
    has_peak = np.zeros(n_regions + 1, bool)
    has_peak[np.unique(regions[seeds > 0])] = True
    has_peak[0] = True
    lonely = ~has_peak[regions]
    extra, n_extra = ndi.label(lonely)
    seeds = np.where(extra > 0, extra + n, seeds).astype(np.int32)
    return seeds, n + n_extra, normalized


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
    interior = ((foreground - boundary) > config.seed_threshold) & mask
    if config.split_by_shape:
        sampling = _sampling(foreground.ndim, config.anisotropy)
        seeds, n, distance = shape_seeds(interior, config.split_depth, sampling)
        # grow over the boundary map, and from the middle of a region where it has none
        surface = boundary - 0.5 * distance
    else:
        seeds, n = ndi.label(interior)
        surface = boundary
    labels = watershed(surface, seeds, mask=mask) if n else np.zeros(mask.shape, np.int32)
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
