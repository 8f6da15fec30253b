"""Resize blocks on the whole image's pixel grid, so rescaled blocks line up exactly.

An instance model runs at its own scale: the image is resized by a factor (the model's
nucleus diameter over the image's) before the network and the maps are resized back.
Resizing each block on its own would round its size differently from the whole image and
shift its pixels by up to half a pixel, which shows as a seam. Here every block samples
the model grid of the WHOLE image (pixel ``k`` of the resized image sits at input
coordinate ``(k + 0.5) * ratio - 0.5``, as in :func:`skimage.transform.resize`), with the
same smoothing before shrinking, so a block's resized pixels are the whole image's.
"""

import math

import numpy as np
from scipy import ndimage as ndi


def model_grid(start: int, stop: int, full: int, model_full: int) -> tuple[int, np.ndarray]:
    """Model-grid pixels inside input pixels ``[start, stop)``: first index, input coordinates.

    Coordinates are relative to ``start``.

    Examples
    --------
    >>> k0, coords = model_grid(4, 8, 16, 8)
    >>> int(k0), coords.tolist()
    (2, [0.5, 2.5])
    """
    ratio = full / model_full
    k0 = max(0, math.ceil((start + 0.5) / ratio - 0.5 - 1e-9))
    k1 = min(model_full, math.floor((stop - 0.5) / ratio - 0.5 + 1e-9) + 1)
    k = np.arange(k0, max(k0, k1))
    return k0, (k + 0.5) * ratio - 0.5 - start


def _mirror(index: np.ndarray, n: int) -> np.ndarray:
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.abs(index) % period
    return np.where(index >= n, period - index, index)


def resample_axis(array: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``array`` along ``axis`` at float ``coords`` (mirrored edges).

    Examples
    --------
    >>> resample_axis(np.array([0.0, 10.0, 20.0]), 0, np.array([0.5, 1.25])).tolist()
    [5.0, 12.5]
    """
    n = array.shape[axis]
    low = np.floor(coords).astype(np.int64)
    weight = (coords - low).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = len(coords)
    weight = weight.reshape(shape)
    a = np.take(array, _mirror(low, n), axis=axis)
    b = np.take(array, _mirror(low + 1, n), axis=axis)
    return (a * (1 - weight) + b * weight).astype(np.float32)


def shrink_or_grow(block: np.ndarray, outer_yx, full_yx, model_yx, align: int = 1,
                   offsets=(0, 0)):
    """``(C, ..., Y, X)`` block on the whole image's model grid; returns it and its first pixel.

    Smooths like :func:`skimage.transform.resize` (sigma ``(ratio - 1) / 2``) when shrinking.
    The first model pixel plus ``offsets`` (the tiler's padding before the whole image) is
    a multiple of ``align`` (or the block starts at the image's edge): a U-Net's pooling
    windows then sit where they sit on the whole image (its output shifts with its input
    only by multiples of its divisor), so the block's network output equals the whole
    image's.
    """
    out = np.asarray(block, np.float32)
    firsts = []
    for i, (sl, full, model) in enumerate(zip(outer_yx, full_yx, model_yx, strict=True)):
        axis = out.ndim - 2 + i
        ratio = full / model
        if ratio > 1:
            out = ndi.gaussian_filter1d(out, (ratio - 1) / 2, axis=axis, mode="mirror",
                                        truncate=4.0)
        k0, coords = model_grid(sl.start, sl.stop, full, model)
        skip = (-(k0 + offsets[i])) % align if k0 else 0
        k0, coords = k0 + skip, coords[skip:]
        out = resample_axis(out, axis, coords)
        firsts.append(k0)
    return out, firsts


def back_to_image(logits: np.ndarray, firsts, core_yx, full_yx, model_yx) -> np.ndarray:
    """Model-grid ``(K, ..., y, x)`` logits resized back onto the image pixels of the core."""
    out = logits
    for i, (k0, sl, full, model) in enumerate(zip(firsts, core_yx, full_yx, model_yx,
                                                  strict=True)):
        axis = out.ndim - 2 + i
        pixels = np.arange(sl.start, sl.stop)
        coords = (pixels + 0.5) * (model / full) - 0.5 - k0
        out = resample_axis(out, axis, coords)
    return out


def pad_like_whole(small: np.ndarray, firsts, model_yx, divisor: int):
    """Pad / trim a model-grid block so the network sees it as it sees the whole image.

    The tiler pads the whole image symmetrically (reflect) to a multiple of ``divisor``.
    A block that touches an image edge gets the same reflected pixels there; its other
    edges are trimmed to the divisor grid. Returns the block (every Y/X size a multiple
    of ``divisor``, first pixel on the whole image's pooling grid) and the number of
    padded pixels before it per axis (to cut from the network's output).
    """
    out = small
    before = []
    for i, (k0, model) in enumerate(zip(firsts, model_yx, strict=True)):
        axis = out.ndim - 2 + i
        total = -(-model // divisor) * divisor
        pad_lo = (total - model) // 2
        pad_hi = total - model - pad_lo
        n = out.shape[axis]
        lo = pad_lo if k0 == 0 else 0
        hi = pad_hi if k0 + n == model else 0
        if lo or hi:
            widths = [(0, 0)] * out.ndim
            widths[axis] = (lo, hi)
            out = np.pad(out, widths, mode="reflect")
        keep = (out.shape[axis] // divisor) * divisor
        out = np.take(out, np.arange(keep), axis=axis)
        before.append(lo)
    return np.ascontiguousarray(out), before


def grid_offset(model: int, divisor: int) -> int:
    """Reflected pixels the tiler puts before the whole image along one axis."""
    total = -(-model // divisor) * divisor
    return (total - model) // 2
