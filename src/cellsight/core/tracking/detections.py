"""Detections: one row per labelled object per frame of a labels time series."""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cellsight.core.arrays.labels import intensity_reason
from cellsight.core.progress import Cancelled, ProgressEvent, never_stop, no_progress


@dataclass
class Detections:
    """Objects found in a labels time series; row ``i`` is detection (node) ``i``.

    Attributes
    ----------
    t : ndarray of int, shape (N,)
        Frame index.
    label : ndarray of int, shape (N,)
        Label id of the object in its frame of the input labels.
    centroid : ndarray of float, shape (N, D)
        Centroid in pixels, (y, x) or (z, y, x).
    area : ndarray of float, shape (N,)
        Pixel (voxel) count.
    bbox : ndarray of int, shape (N, 2 * D)
        ``(min_0, ..., min_D-1, max_0, ..., max_D-1)``, max exclusive.
    mean_intensity : ndarray of float, shape (N,), or None
        Mean of the image inside the object, when an image was given.
    shape : tuple of int
        Shape of the labels time series ``(T, [Z,] Y, X)``.
    """

    t: np.ndarray
    label: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    mean_intensity: np.ndarray | None
    shape: tuple[int, ...]

    def __len__(self) -> int:
        """Number of detections."""
        return len(self.t)

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self.shape) - 1

    @property
    def n_frames(self) -> int:
        """Number of frames of the time series."""
        return self.shape[0]

    def frame_slices(self) -> list[slice]:
        """Row range of each frame (rows are sorted by frame, then label)."""
        starts = np.searchsorted(self.t, np.arange(self.n_frames + 1))
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]

    def node_of(self, t: int, label: int) -> int | None:
        """Row of the object with ``label`` in frame ``t`` (None if absent)."""
        rows = self.frame_slices()[t]
        idx = int(np.searchsorted(self.label[rows], label))
        if idx < rows.stop - rows.start and self.label[rows][idx] == label:
            return rows.start + idx
        return None


SEGMENTATION = "Track label masks (one id per cell), e.g. from 'cellsight segment'."


def check_labels_series(labels: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """Validate a labels time series ``(T, Y, X)`` or ``(T, Z, Y, X)``; return it as an array."""
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4):
        raise ValueError(
            "Tracking needs a labels time series (T, Y, X) or (T, Z, Y, X); "
            f"got shape {labels.shape}."
        )
    if labels.dtype.kind not in "iub":
        raise ValueError(f"Labels must be integers; got dtype {labels.dtype}, as an intensity "
                         f"image has. {SEGMENTATION}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError("Labels must be >= 0; found negative ids.")
    for t in sorted({0, len(labels) // 2, len(labels) - 1}):
        reason = intensity_reason(labels[t])
        if reason:
            raise ValueError(f"The labels look like an intensity image, not a segmentation: in "
                             f"frame {t} {reason}. {SEGMENTATION}")
    if image is not None and np.shape(image) != labels.shape:
        raise ValueError(
            f"Image shape {np.shape(image)} does not match the labels shape {labels.shape}."
        )
    return labels.astype(np.uint8) if labels.dtype == bool else labels


def _frame_props(frame: np.ndarray, image: np.ndarray | None) -> dict | None:
    flat = frame.ravel()
    where = np.flatnonzero(flat)
    if where.size == 0:
        return None
    # ids 1..n in a compact copy: sparse ids (up to 2**32) need no tables of max-id size
    ids, lab = np.unique(flat[where], return_inverse=True)
    ids = ids.astype(np.int64)
    lab = lab.ravel().astype(np.int64)
    area = np.bincount(lab).astype(np.float64)
    coords = np.unravel_index(where, frame.shape)
    centroid = np.stack([np.bincount(lab, weights=c) for c in coords], axis=1) / area[:, None]
    compact = np.zeros(frame.shape, np.int32)
    compact.ravel()[where] = lab + 1
    boxes = ndi.find_objects(compact)
    bbox = np.array([[s.start for s in b] + [s.stop for s in b] for b in boxes], np.int64)
    mean = None
    if image is not None:
        values = np.asarray(image, np.float64).ravel()[where]
        mean = np.bincount(lab, weights=values) / area
    return {"label": ids, "area": area, "centroid": centroid, "bbox": bbox, "mean": mean}


def detect(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    progress=no_progress,
    should_stop=never_stop,
) -> Detections:
    """Measure every labelled object in every frame.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels ``(T, Y, X)`` or ``(T, Z, Y, X)``; ids need not be consistent
        over time (each frame is read on its own).
    image : numpy.ndarray, optional
        Intensities of the same shape; adds the mean intensity of each object.
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    Detections

    Raises
    ------
    ValueError
        If the labels are not a 2D+t / 3D+t integer series, are empty, or the
        image shape differs.

    Examples
    --------
    >>> lab = np.zeros((2, 8, 8), np.uint16); lab[:, 2:4, 2:4] = 1
    >>> len(detect(lab))
    2
    """
    labels = check_labels_series(labels, image)
    rows = []
    n = labels.shape[0]
    for t in range(n):
        if should_stop():
            raise Cancelled(partial=None)
        props = _frame_props(labels[t], None if image is None else image[t])
        if props is not None:
            props["t"] = np.full(len(props["label"]), t, np.int64)
            rows.append(props)
        progress(ProgressEvent(t + 1, n, "measuring cells"))
    if not rows:
        raise ValueError("The labels are empty: no object in any frame, nothing to track.")
    cat = {k: np.concatenate([r[k] for r in rows]) for k in ("t", "label", "area")}
    return Detections(
        t=cat["t"],
        label=cat["label"],
        centroid=np.concatenate([r["centroid"] for r in rows]),
        area=cat["area"],
        bbox=np.concatenate([r["bbox"] for r in rows]),
        mean_intensity=None if image is None else np.concatenate([r["mean"] for r in rows]),
        shape=tuple(int(s) for s in labels.shape),
    )
