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

    values = [v for v in np.unique(labels) if v != 0]
    return _majority(labels, shape, values, label_fractions(labels, shape, values), min_annotated)


def shrink_labels(
    labels: np.ndarray, shape: Sequence[int], values: Sequence[int], min_annotated: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink a class map to ``shape`` once, giving both of its forms.

    Returns the class map of :func:`resize_labels` and the class shares of
    :func:`label_fractions` for ``values`` (which must hold every class present),
    measuring each class's coverage only once.
    """
    shape = tuple(shape)
    labels = np.asarray(labels)
    fractions = label_fractions(labels, shape, values)
    return _majority(labels, shape, values, fractions, min_annotated), fractions


def _majority(labels, shape, values, fractions, min_annotated) -> np.ndarray:
    """Per output pixel the value covering most of it; 0 where too little is annotated."""
    out = np.zeros(shape, labels.dtype)
    if len(values):
        out[...] = np.asarray(values, labels.dtype)[fractions.argmax(0)]
    out[_fraction(labels != 0, shape) < min_annotated] = 0
    return out


def _fraction(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Share of each output pixel that ``mask`` covers (aligned as in resize_channels)."""
    return resize(mask.astype(np.float32), shape, order=1, mode="edge", anti_aliasing=True)


def label_fractions(labels: np.ndarray, shape: Sequence[int], values: Sequence[int]) -> np.ndarray:
    """Share of every output pixel covered by each label value, ``(len(values), *shape)``.

    The soft counterpart of :func:`resize_labels` when shrinking: class ``values[k]``
    covers ``out[k]`` of each resized pixel (measured with the smoothing and alignment
    of :func:`resize_channels`). Unannotated input (0) is counted by no channel, so the
    channels sum to the annotated share.
    """
    shape = tuple(shape)
    labels = np.asarray(labels)
    out = np.zeros((len(values), *shape), np.float32)
    for k, value in enumerate(values):
        out[k] = np.clip(_fraction(labels == value, shape), 0.0, 1.0)
    return out
