"""Resizing images and label maps in Y/X (a model's ``scale``), channel axis first."""

from collections.abc import Sequence

import numpy as np
from skimage.transform import resize


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """``shape`` with its last two axes (Y, X) multiplied by ``factor`` (at least 1)."""
    shape = tuple(int(s) for s in shape)
    return shape[:-2] + tuple(max(1, int(round(s * factor))) for s in shape[-2:])


def resize_channels(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize every channel of ``(C, *spatial)`` to ``shape`` (linear; smoothed when shrinking)."""
    shape = tuple(shape)
    if tuple(image.shape[1:]) == shape:
        return np.asarray(image, np.float32)
    shrink = any(n < o for n, o in zip(shape, image.shape[1:], strict=True))
    return np.stack(
        [
            resize(ch, shape, order=1, mode="reflect", anti_aliasing=shrink, preserve_range=True)
            for ch in image
        ]
    ).astype(np.float32)


def resize_labels(
    labels: np.ndarray, shape: Sequence[int], min_annotated: float = 0.2
) -> np.ndarray:
    """Resize a class map (0 = not annotated) to ``shape``; ids stay ids.

    Shrinking gives each output pixel the class covering most of the input pixels
    under it (area fractions, measured with the same smoothing and pixel-centre
    alignment as :func:`resize_channels`, so the classes stay aligned with the
    resized image; sampling one input pixel per output pixel would shift outlines by
    up to ``1/factor`` pixels and add half a pixel of bias). An output pixel stays 0
    where less than ``min_annotated`` of it is annotated, so thin scribbles survive.
    Enlarging uses nearest neighbours.
    """
    shape = tuple(shape)
    labels = np.asarray(labels)
    if tuple(labels.shape) == shape:
        return labels
    shrink = any(n < o for n, o in zip(shape, labels.shape, strict=True))
    if not shrink:
        out = resize(labels, shape, order=0, mode="edge", anti_aliasing=False, preserve_range=True)
        return out.astype(labels.dtype)

    def fraction(mask: np.ndarray) -> np.ndarray:
        return resize(mask.astype(np.float32), shape, order=1, mode="edge", anti_aliasing=True)

    best = np.zeros(shape, np.float32)
    out = np.zeros(shape, labels.dtype)
    for value in np.unique(labels):
        if value == 0:
            continue
        f = fraction(labels == value)
        better = f > best
        best[better] = f[better]
        out[better] = value
    out[fraction(labels != 0) < min_annotated] = 0
    return out
