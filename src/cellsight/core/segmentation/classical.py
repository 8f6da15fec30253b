"""Classical baselines: what a user would do without a trained model.

Percentile normalisation, Gaussian smoothing, Otsu threshold and a
distance-transform watershed that splits touching nuclei.
"""

import numpy as np
from scipy import ndimage as ndi

from cellsight.core.arrays.normalize import percentile_values, scale_range


def percentile_normalize(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Scale ``image`` so that its ``low``/``high`` percentiles map to 0/1 (float32).

    See :mod:`cellsight.core.arrays.normalize` for the per-channel version whose values can be
    stored with a model.

    Raises
    ------
    ValueError
        If the image contains NaN or infinite values.
    """
    image = np.asarray(image, dtype=np.float32)
    return scale_range(image, *percentile_values(image, low, high))


def otsu_watershed(
    image: np.ndarray, sigma: float = 1.0, min_distance: int = 5, min_size: int = 15
) -> np.ndarray:
    """Instance labels from Otsu foreground + distance-transform watershed (2D or 3D).

    Parameters
    ----------
    image : numpy.ndarray
        One 2D or 3D image (no time axis).
    sigma : float
        Gaussian smoothing before thresholding, in pixels.
    min_distance : int
        Smallest distance between two seeds (roughly a nucleus radius).
    min_size : int
        Objects smaller than this many pixels are removed.

    Returns
    -------
    numpy.ndarray of int32
        Labels with consecutive ids, 0 = background.

    Examples
    --------
    Two touching discs are cut apart at their neck:

    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = (((yy - 32) ** 2 + (xx - 20) ** 2 < 144)
    ...          | ((yy - 32) ** 2 + (xx - 42) ** 2 < 144)).astype(np.float32)
    >>> int(otsu_watershed(image, min_distance=8).max())
    2
    """
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import relabel_sequential, watershed

    if image.ndim not in (2, 3):
        raise ValueError(f"otsu_watershed needs one 2D or 3D image; got shape {image.shape}.")
    smooth = ndi.gaussian_filter(percentile_normalize(image), sigma)
    mask = smooth > threshold_otsu(smooth)
    mask = remove_small_objects(mask, max_size=min_size - 1) if min_size > 1 else mask
    if not mask.any():
        return np.zeros(image.shape, np.int32)
    dist = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=ndi.label(mask)[0])
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=mask)
    return relabel_sequential(labels.astype(np.int32))[0]
