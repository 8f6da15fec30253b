"""Percentile normalisation whose parameters can be stored with a model.

``low``/``high`` percentiles of an image map to 0/1. A model stores the percentiles it
was trained with (:class:`Normalization`), and prediction normalises every new image
with the same percentiles, computed on that image (per channel). The measured values
are kept too, so a caller may apply exactly the training values instead.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

EPS = 1e-8


def check_intensities(image: np.ndarray) -> None:
    """Refuse an array that is not an intensity image: complex, boolean or non-numeric.

    Raises
    ------
    ValueError
        Naming the dtype (a bool array is a mask: it goes where labels go).
    """
    kind = np.asarray(image).dtype.kind
    if kind == "b":
        raise ValueError("The image is binary (dtype bool), a mask rather than an intensity "
                         "image: give the raw image (masks go where labels are asked for).")
    if kind == "c":
        raise ValueError(f"The image holds complex numbers (dtype {np.asarray(image).dtype}); "
                         "cellsight works on real intensities: save its magnitude or real part.")
    if kind not in "iuf":
        raise ValueError(f"The image has dtype {np.asarray(image).dtype}; cellsight works on "
                         "numeric intensity images.")


def percentile_values(
    image: np.ndarray, low: float = 1.0, high: float = 99.8
) -> tuple[float, float]:
    """Return the ``low`` and ``high`` percentile values of ``image``.

    Raises
    ------
    ValueError
        If the percentiles are out of order or the image has NaN / infinite values.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"Percentiles must satisfy 0 <= low < high <= 100; got {low}, {high}.")
    image = np.asarray(image)
    check_intensities(image)
    if image.size == 0:
        raise ValueError("Cannot normalise an empty image.")
    if not np.all(np.isfinite(image)):
        raise ValueError("The image contains NaN or infinite values; cannot normalise it.")
    lo, hi = np.percentile(image, [low, high])
    return float(lo), float(hi)


def scale_range(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``lo``/``hi`` to 0/1 linearly (float32, new array)."""
    image = np.asarray(image, dtype=np.float32)
    return (image - np.float32(lo)) / np.float32(max(hi - lo, EPS))


@dataclass(frozen=True)
class Normalization:
    """How images were normalised: percentiles, and the values measured on training data.

    Attributes
    ----------
    low, high : float
        Percentiles mapped to 0 and 1.
    low_values, high_values : tuple of float
        Values of those percentiles per channel, measured on the training images
        (empty when not measured).
    """

    low: float = 1.0
    high: float = 99.8
    low_values: tuple[float, ...] = field(default_factory=tuple)
    high_values: tuple[float, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """Plain dict for ``config.yaml``."""
        d = asdict(self)
        d["low_values"] = list(self.low_values)
        d["high_values"] = list(self.high_values)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        """Inverse of :meth:`to_dict`."""
        return cls(
            low=float(data.get("low", 1.0)),
            high=float(data.get("high", 99.8)),
            low_values=tuple(float(v) for v in data.get("low_values", ())),
            high_values=tuple(float(v) for v in data.get("high_values", ())),
        )


def normalize_channels(
    image: np.ndarray,
    low: float = 1.0,
    high: float = 99.8,
    values: Sequence[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Percentile-normalise each channel of a ``(C, *spatial)`` image.

    Parameters
    ----------
    image : numpy.ndarray
        Channel axis first. Not modified.
    low, high : float
        Percentiles mapped to 0 and 1 (computed per channel on this image).
    values : sequence of (lo, hi), optional
        Use these values per channel instead of measuring the percentiles.

    Returns
    -------
    normalised : numpy.ndarray of float32
    values : list of (lo, hi)
        The values used, per channel.

    Examples
    --------
    >>> img = np.arange(101, dtype=float)[None]
    >>> out, vals = normalize_channels(img, 0, 100)
    >>> float(out.max()), vals
    (1.0, [(0.0, 100.0)])
    """
    image = np.asarray(image)
    check_intensities(image)
    if image.ndim < 2:
        raise ValueError(f"Need a (C, *spatial) image; got shape {image.shape}.")
    if values is not None and len(values) != image.shape[0]:
        raise ValueError(f"{len(values)} normalisation values for {image.shape[0]} channel(s).")
    out = np.empty(image.shape, np.float32)
    used = []
    for c in range(image.shape[0]):
        lo, hi = values[c] if values is not None else percentile_values(image[c], low, high)
        out[c] = scale_range(image[c], lo, hi)
        used.append((float(lo), float(hi)))
    return out, used


def measure_normalization(
    images: Sequence[np.ndarray], low: float = 1.0, high: float = 99.8
) -> Normalization:
    """Median per-channel percentile values over ``(C, *spatial)`` training images."""
    per_image = [normalize_channels(img, low, high)[1] for img in images]
    arr = np.asarray(per_image, dtype=np.float64)  # (n_images, C, 2)
    med = np.median(arr, axis=0)
    return Normalization(low, high, tuple(med[:, 0].tolist()), tuple(med[:, 1].tolist()))
