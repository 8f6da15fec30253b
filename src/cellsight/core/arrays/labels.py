"""Is a label image a label image? Checks shared by training and tracking.

A label image holds whole numbers, 0 for background, and each id covers a compact
patch: most pairs of neighbouring labelled pixels share their id. An intensity image
read as labels (a raw frame, or images and labels swapped) fails that test: its values
change from pixel to pixel. :func:`as_labels` turns whole-number floats into integers
and refuses the rest with one line naming the problem.
"""

import numpy as np

#: an image with at least this many ids, mostly non-zero pixels and fewer than
#: :data:`MIN_SHARED` of neighbouring pixel pairs sharing an id is an intensity image
MIN_IDS = 20
#: share of neighbouring labelled pixel pairs with equal ids below which ids are not patches
MIN_SHARED = 0.5
#: pixels looked at per image by :func:`intensity_reason` (leading planes beyond are skipped)
SAMPLE_PIXELS = 1 << 22


def shared_neighbours(labels: np.ndarray) -> float:
    """Share of neighbouring pixel pairs whose values are equal (near 1 for labels).

    Pairs along every axis count when one of the two pixels is non-zero at least;
    noisy intensities give a share near 0.

    Examples
    --------
    >>> lab = np.zeros((8, 8), int)
    >>> lab[2:6, 2:6] = 3
    >>> round(shared_neighbours(lab), 2)
    0.6
    >>> shared_neighbours(np.arange(64).reshape(8, 8))
    0.0
    """
    equal = pairs = 0
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)
        first, second = a[1:], a[:-1]
        touched = (first != 0) | (second != 0)
        pairs += int(touched.sum())
        equal += int(((first == second) & touched).sum())
    return equal / pairs if pairs else 1.0


def _sample(labels: np.ndarray) -> np.ndarray:
    """The leading planes of ``labels`` up to :data:`SAMPLE_PIXELS` pixels (at least one)."""
    if labels.size <= SAMPLE_PIXELS or labels.ndim < 3:
        return labels
    plane = int(np.prod(labels.shape[1:]))
    return labels[: max(1, SAMPLE_PIXELS // plane)]


def intensity_reason(labels: np.ndarray) -> str | None:
    """Why ``labels`` look like an intensity image rather than labels, or None.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> intensity_reason(rng.integers(100, 4000, (32, 32)))[:40]
    'they hold 899 different values and only '
    >>> lab = np.zeros((32, 32), int); lab[4:12, 4:12] = 1
    >>> intensity_reason(lab) is None
    True
    """
    sample = _sample(np.asarray(labels))
    if sample.size == 0 or np.count_nonzero(sample) <= sample.size // 2:
        return None  # mostly background: labels (or nothing to judge)
    shared = shared_neighbours(sample)
    if shared >= MIN_SHARED:
        return None
    ids = np.unique(sample)
    n_ids = int((ids != 0).sum())
    if n_ids < MIN_IDS:
        return None
    return (f"they hold {n_ids} different values and only {shared:.0%} of neighbouring "
            "pixels share one (in a label image most do)")


def as_labels(labels: np.ndarray, name: str = "labels", hint: str = "") -> np.ndarray:
    """Return ``labels`` as an integer array, refusing what is not a label image.

    Whole-number floats (labels saved as float32 by some tools) become int64; other
    arrays are returned unchanged (never modified in place).

    Parameters
    ----------
    labels : numpy.ndarray
    name : str
        How the messages call the array (``"labels 0"``, ``"LABELS"``).
    hint : str
        Added to the message of an intensity-like array (e.g. "were the images and the
        labels swapped?").

    Raises
    ------
    ValueError
        Fractional, NaN, complex or negative values, or an intensity-like image.

    Examples
    --------
    >>> as_labels(np.array([[0.0, 2.0], [1.0, 1.0]])).dtype
    dtype('int64')
    >>> as_labels(np.array([[0.5, 2.0]]))
    Traceback (most recent call last):
    ...
    ValueError: labels hold fractional values (dtype float64): this is an intensity image, ...
    """
    labels = np.asarray(labels)
    tail = f" {hint}" if hint else ""
    kind = labels.dtype.kind
    if kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{name} hold NaN or infinite values; labels are whole numbers.")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} hold fractional values (dtype {labels.dtype}): this is "
                             f"an intensity image, not labels.{tail}")
        labels = labels.astype(np.int64)
    elif kind not in "biu":
        raise ValueError(f"{name} must hold whole numbers; got dtype {labels.dtype}.")
    if kind in "if" and labels.size and labels.min() < 0:
        raise ValueError(f"{name} hold negative values ({labels.min()}); ids are >= 0.")
    reason = intensity_reason(labels) if kind != "b" else None
    if reason:
        raise ValueError(f"{name} look like an intensity image, not labels: {reason}.{tail}")
    return labels
