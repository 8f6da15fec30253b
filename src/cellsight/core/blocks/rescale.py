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
    # inside the image a model pixel needs both input neighbours in the block; at the
    # image's own edges the whole image mirrors, and so does the block
    k0 = 0 if start == 0 else math.ceil((start + 0.5) / ratio - 0.5 - 1e-9)
    k1 = model_full if stop == full else math.floor((stop - 0.5) / ratio - 0.5 + 1e-9) + 1
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
    """Model-grid ``(K, ..., y, x)`` logits resized back onto the image pixels of the core.

    Smoothed first when the model grid is finer than the image, as
    :func:`skimage.transform.resize` smooths.
    """
    out = logits
    for i, (k0, sl, full, model) in enumerate(zip(firsts, core_yx, full_yx, model_yx,
                                                  strict=True)):
        axis = out.ndim - 2 + i
        if model > full:  # shrinking back: the same smoothing as the whole image gets
            out = ndi.gaussian_filter1d(out, (model / full - 1) / 2, axis=axis, mode="mirror",
                                        truncate=4.0)
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


def aligned_output(net, x: np.ndarray, outer_yx, core_yx, full_yx, model_yx,
                   tta: bool = False, device: str = "auto") -> np.ndarray:
    """The network's output on the core of a block, as on the whole image.

    ``x`` is the block's normalised ``(C, ..., Y, X)`` outer region; it is put on the
    whole image's model grid (``model_yx`` pixels for ``full_yx``), aligned with the
    pooling grid and padded like the whole image at its edges, run in one tile and brought
    back onto the core's image pixels: ``(C_out, ..., y, x)``.
    """
    from cellsight.core.progress import no_progress
    from cellsight.core.segmentation.semantic import tiled_logits

    ndim = x.ndim - 1
    divisor = int(getattr(net, "divisor", 1))
    offsets = [grid_offset(m, divisor) for m in model_yx]
    small, firsts = shrink_or_grow(x, outer_yx, full_yx, model_yx, divisor, offsets)
    padded, before = pad_like_whole(small, firsts, model_yx, divisor)
    tile = max(padded.shape[1:])
    out = tiled_logits(net, padded, tta, no_progress, tile_shape=(tile,) * ndim, device=device)
    # drop the reflected pixels (the whole image's output stops at its last real pixel
    # and is mirrored from there when resized back)
    real = [min(s, p - b) for s, p, b in zip(small.shape[-2:], padded.shape[-2:], before,
                                             strict=True)]
    out = out[(slice(None), *(slice(None),) * (ndim - 2), slice(before[0], before[0] + real[0]),
               slice(before[1], before[1] + real[1]))]
    return back_to_image(out, firsts, core_yx, full_yx, model_yx)


def block_logits(model, frame, outer_yx, core_yx, inner, full_yx, factor: float,
                 tta: bool = False, device: str = "auto") -> np.ndarray:
    """Logits of a block's core as the whole image would give them, ``(K, ..., y, x)``.

    ``frame`` is the block's outer region (``{Z}YX``; a 2D model runs a stack slice by
    slice); ``model`` a semantic / instance model whose normalisation is the image-wide
    one; ``factor`` its Y/X resize factor; ``inner`` the core inside the outer region.
    """
    from cellsight.core.arrays.resize import scaled_shape
    from cellsight.core.segmentation.semantic import normalize_frame

    model_yx = scaled_shape(full_yx, factor)
    ndim = model.config.unet.ndim
    planes = frame[None] if frame.ndim == ndim else frame[:, None]  # slice by slice
    logits = []
    for plane in planes:
        x = normalize_frame(plane[None] if plane.ndim == ndim else plane, model.config)
        logits.append(aligned_output(model.net, x, outer_yx, core_yx, full_yx, model_yx,
                                     tta, device))
    stacked = logits[0] if frame.ndim == ndim else np.stack(logits, axis=1)
    return stacked[(slice(None), *inner[:-2], slice(None), slice(None))]
