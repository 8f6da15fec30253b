"""Label corrections a biologist makes after a prediction, and what they changed.

Every function returns a NEW label array (inputs are never modified) and works on 2D
and 3D label images; :func:`edit_frames` applies them to one time point of a series (or to
each). The napari widget turns the difference into an undoable edit of the Labels layer.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


def _check_ids(labels: np.ndarray, ids) -> list[int]:
    ids = sorted({int(i) for i in np.atleast_1d(ids) if int(i) != 0})
    if not ids:
        raise ValueError("No label selected: pick at least one object (id > 0).")
    present = set(np.unique(labels).tolist())
    missing = [i for i in ids if i not in present]
    if missing:
        raise ValueError(f"Label id(s) {missing} do not exist in this labels image.")
    return ids


def merge_labels(labels: np.ndarray, ids) -> np.ndarray:
    """Merge the objects ``ids`` into one that keeps the smallest id.

    Examples
    --------
    >>> lab = np.array([[1, 0, 2]])
    >>> merge_labels(lab, [1, 2]).tolist()
    [[1, 0, 1]]
    """
    ids = _check_ids(labels, ids)
    if len(ids) < 2:
        raise ValueError("Merging needs at least two different objects.")
    out = labels.copy()
    out[np.isin(labels, ids[1:])] = ids[0]
    return out


def delete_labels(labels: np.ndarray, ids) -> np.ndarray:
    """Set the objects ``ids`` to background.

    Examples
    --------
    >>> delete_labels(np.array([[1, 2, 3]]), [2]).tolist()
    [[1, 0, 3]]
    >>> delete_labels(np.array([[1, 2, 3]]), [9])
    Traceback (most recent call last):
    ...
    ValueError: ...
    """
    ids = _check_ids(labels, ids)
    out = labels.copy()
    out[np.isin(labels, ids)] = 0
    return out


def fill_holes(labels: np.ndarray, ids=None) -> np.ndarray:
    """Fill holes inside objects (all objects when ``ids`` is None)."""
    out = labels.copy()
    targets = _check_ids(labels, ids) if ids is not None else np.unique(labels)[1:]
    slices = ndi.find_objects(labels)
    for i in targets:
        sl = slices[int(i) - 1]
        if sl is None:
            continue
        region = out[sl]
        filled = ndi.binary_fill_holes(region == i)
        region[filled & (region == 0)] = i
    return out


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Renumber objects 1..N keeping their order."""
    from skimage.segmentation import relabel_sequential as _relabel

    return _relabel(labels)[0]


def split_label(
    labels: np.ndarray, label_id: int, seeds, image: np.ndarray | None = None
) -> np.ndarray:
    """Split object ``label_id`` with a seeded watershed from two or more seed points.

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D label image.
    label_id : int
        The object to split.
    seeds : sequence of coordinates
        Points inside the object, one per resulting part (pixel coordinates, same
        dimensionality as ``labels``).
    image : numpy.ndarray, optional
        Intensity image of the same shape; when given, the watershed follows dark
        valleys between bright nuclei, otherwise the distance transform.

    Returns
    -------
    numpy.ndarray
        New labels; the first part keeps ``label_id``, the others get new ids.

    Examples
    --------
    Two nuclei segmented as one object, one seed in each:

    >>> labels = np.zeros((10, 20), np.uint16)
    >>> labels[2:8, 2:18] = 4
    >>> parts = split_label(labels, 4, [(5, 5), (5, 14)])
    >>> np.unique(parts).tolist(), int(parts[5, 5]), int(parts[5, 14])
    ([0, 4, 5], 4, 5)
    """
    from skimage.segmentation import watershed

    (label_id,) = _check_ids(labels, [label_id])
    seeds = np.round(np.asarray(seeds, float)).astype(int)
    if seeds.ndim != 2 or seeds.shape[1] != labels.ndim or len(seeds) < 2:
        raise ValueError(
            f"Splitting needs at least two {labels.ndim}D seed points inside the object."
        )
    mask = labels == label_id
    in_bounds = [s for s in seeds if np.all(s >= 0) and np.all(s < labels.shape)]
    inside = [tuple(s) for s in in_bounds if mask[tuple(s)]]
    if len(inside) < 2:
        raise ValueError(f"At least two seed points must lie inside object {label_id}.")
    markers = np.zeros(labels.shape, np.int32)
    for k, s in enumerate(inside, start=1):
        markers[s] = k
    if image is not None:
        if image.shape != labels.shape:
            raise ValueError(f"Image shape {image.shape} differs from labels {labels.shape}.")
        surface = -ndi.gaussian_filter(np.asarray(image, np.float32), 1.0)
    else:
        surface = -ndi.distance_transform_edt(mask)
    parts = watershed(surface, markers, mask=mask)
    out = labels.copy()
    next_id = int(labels.max()) + 1
    for k in range(2, len(inside) + 1):
        out[parts == k] = next_id
        next_id += 1
    return out


def split_by_line(labels: np.ndarray, label_id: int, line) -> np.ndarray:
    """Split object ``label_id`` along a drawn 2D polyline (``line``: (N, 2) points).

    The pixels under the line are removed from the object, the pieces become separate
    objects, and the line pixels are given back to the nearest piece.
    """
    from skimage.draw import line as draw_line

    if labels.ndim != 2:
        raise ValueError("Splitting along a line works on 2D labels (one frame or slice).")
    (label_id,) = _check_ids(labels, [label_id])
    pts = np.round(np.asarray(line, float)).astype(int)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise ValueError("The cut line needs at least two (y, x) points.")
    cut = np.zeros(labels.shape, bool)
    for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:], strict=True):
        rr, cc = draw_line(r0, c0, r1, c1)
        ok = (rr >= 0) & (rr < labels.shape[0]) & (cc >= 0) & (cc < labels.shape[1])
        cut[rr[ok], cc[ok]] = True
    cut = ndi.binary_dilation(cut)  # a 1-pixel line leaks through diagonals
    mask = labels == label_id
    pieces, n = ndi.label(mask & ~cut)
    if n < 2:
        raise ValueError(f"The line does not cut object {label_id} into two pieces.")
    _, (iy, ix) = ndi.distance_transform_edt(pieces == 0, return_indices=True)
    pieces = np.where(mask, pieces[iy, ix], 0)
    out = labels.copy()
    next_id = int(labels.max()) + 1
    for k in range(2, n + 1):
        out[pieces == k] = next_id
        next_id += 1
    return out


def edit_frames(labels: np.ndarray, edit, frame: int | None = None,
                per_frame: bool = False) -> np.ndarray:
    """Apply a correction to one time point of a series, to each time point, or to all at once.

    Parameters
    ----------
    labels : numpy.ndarray
        Label image; with ``frame`` or ``per_frame`` its first axis is time.
    edit : callable
        ``edit(labels) -> new labels`` of the same shape, e.g. ``lambda lab:
        delete_labels(lab, [7])``.
    frame : int, optional
        Edit only this time point; the other frames are returned unchanged.
    per_frame : bool
        Without ``frame``: apply ``edit`` to every time point separately (e.g. filling
        holes in 2D); a time point where it raises ``ValueError`` (the ids are not in
        that frame) is kept as it is, unless it raises in every one. By default
        ``edit`` sees the whole array at once.

    Returns
    -------
    numpy.ndarray
        New labels; ``labels`` is not modified.

    Examples
    --------
    >>> movie = np.array([[[7, 0]], [[7, 7]]])
    >>> edit_frames(movie, lambda lab: delete_labels(lab, [7]), frame=1).tolist()
    [[[7, 0]], [[0, 0]]]
    >>> edit_frames(movie, lambda lab: delete_labels(lab, [7])).tolist()
    [[[0, 0]], [[0, 0]]]
    """
    labels = np.asarray(labels)
    if frame is None and not per_frame:
        return _same_shape(edit(labels), labels.shape)
    if labels.ndim < 3:
        raise ValueError(f"Labels of shape {labels.shape} have no time axis to edit by frame.")
    out = labels.copy()
    if frame is not None:
        if not 0 <= int(frame) < labels.shape[0]:
            raise ValueError(f"Frame {frame} is outside 0..{labels.shape[0] - 1}.")
        out[int(frame)] = _same_shape(edit(labels[int(frame)]), labels.shape[1:])
        return out
    errors = []
    for t in range(labels.shape[0]):
        try:
            out[t] = _same_shape(edit(labels[t]), labels.shape[1:])
        except ValueError as exc:
            errors.append(exc)
    if len(errors) == labels.shape[0]:
        raise errors[0]
    return out


def _same_shape(new, shape) -> np.ndarray:
    new = np.asarray(new)
    if new.shape != tuple(shape):
        raise ValueError(f"The correction returned shape {new.shape}; expected {tuple(shape)}.")
    return new


@dataclass(frozen=True)
class EditedRegion:
    """Where a corrected label image differs from the model's prediction."""

    frame: int | None  # time index for time series, else None
    bbox: tuple[slice, ...]
    n_pixels: int


def edited_mask(prediction: np.ndarray, corrected: np.ndarray) -> np.ndarray:
    """Boolean mask of pixels whose object assignment changed.

    Object ids may be renumbered without counting as an edit: a pixel counts as edited
    when its object's overlap partner in the other image differs.
    """
    if prediction.shape != corrected.shape:
        raise ValueError(
            f"Prediction {prediction.shape} and corrections {corrected.shape} differ in shape."
        )
    changed = prediction != corrected
    if not changed.any():
        return changed
    # an object renumbered without other change is no edit; merges and splits are
    # caught by mapping ids both ways to their largest-overlap partner
    a = np.asarray(prediction, np.int64)
    b = np.asarray(corrected, np.int64)
    return (_best_partner(b, a) != a) | (_best_partner(a, b) != b)


def _best_partner(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """For every pixel, the ``dst`` id that its ``src`` object overlaps most."""
    pairs, counts = np.unique(np.stack([src.ravel(), dst.ravel()]), axis=1, return_counts=True)
    order = np.lexsort((counts, pairs[0]))  # by src id, then count ascending
    lut = np.full(int(src.max()) + 1, -1, np.int64)
    lut[pairs[0][order]] = pairs[1][order]  # last write per src id = largest overlap
    return lut[src]


def edited_regions(
    prediction: np.ndarray, corrected: np.ndarray, time_axis: bool = False
) -> list[EditedRegion]:
    """List the connected regions where ``corrected`` differs from ``prediction``.

    These are what the Fine-tune dock trains on. A renumbered object is no edit.

    Examples
    --------
    >>> prediction = np.zeros((8, 8), np.uint16)
    >>> prediction[1:4, 1:4], prediction[5:7, 5:7] = 1, 2
    >>> corrected = delete_labels(prediction, [2])  # a false object removed
    >>> [(r.frame, r.n_pixels) for r in edited_regions(prediction, corrected)]
    [(None, 4)]
    >>> edited_regions(prediction, np.where(prediction == 1, 9, prediction))
    []
    """
    mask = edited_mask(prediction, corrected)
    frames = range(mask.shape[0]) if time_axis else [None]
    out = []
    for t in frames:
        m = mask[t] if t is not None else mask
        lab, _ = ndi.label(m)
        for k, sl in enumerate(ndi.find_objects(lab), start=1):
            if sl is not None:
                out.append(EditedRegion(t, sl, int((lab[sl] == k).sum())))
    return out
