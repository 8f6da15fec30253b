"""Instance segmentation training targets (2D, anisotropic 3D, time series).

Training: instance labels become a class map (:func:`instance_targets`) with
0 = not annotated (ignored by the loss), 1 = background, 2 = object interior and
3 = object boundary, so the semantic training path trains instance models unchanged.
Partially annotated images keep unlabelled objects out of the loss
(:func:`annotated_region`); binary foreground masks give weaker supervision
(:func:`foreground_targets`).

Post-processing (probabilities -> separated objects) lives in
:mod:`cellsight.core.segmentation.watershed`.
"""

import numpy as np
from scipy import ndimage as ndi

from cellsight.config.instances import (
    BACKGROUND,
    BOUNDARY,
    IGNORE,
    INTERIOR,
    InstanceTargetConfig,
)


def _check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"{name} must be one 2D or 3D image; got shape {labels.shape}.")
    if labels.dtype.kind not in "biu":
        if labels.dtype.kind != "f" or not np.all(labels == np.round(labels)):
            raise ValueError(f"{name} must hold whole numbers; got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} must be >= 0; found {labels.min()}.")
    return labels.astype(np.int64, copy=False)


def _sampling(ndim: int, anisotropy: float) -> tuple[float, ...]:
    return (anisotropy, 1.0, 1.0) if ndim == 3 else (1.0, 1.0)


def boundary_map(labels: np.ndarray, width: float = 2.0, anisotropy: float = 1.0) -> np.ndarray:
    """Boolean band of ``width`` pixels inside every object, along its outline.

    A pixel is on the boundary if it belongs to an object and lies closer than
    ``width`` pixels (physical distance, Z scaled by ``anisotropy``) to a pixel whose
    label differs (another object or background). The image border is not an outline.

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D instance labels, 0 = background.
    width : float
        Band width in Y/X pixels (>= 1; 1 = only the outermost pixels).
    anisotropy : float
        3D only: Z spacing divided by Y/X spacing.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> lab = np.zeros((7, 7), int); lab[1:6, 1:6] = 1
    >>> boundary_map(lab, 1).sum(), boundary_map(lab, 2).sum()
    (np.int64(16), np.int64(24))
    """
    from skimage.segmentation import find_boundaries

    labels = _check_labels(labels)
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 pixel; got {width}.")
    objects = labels > 0
    edge = find_boundaries(labels, connectivity=1, mode="inner") & objects
    if width <= 1 or not edge.any():
        return edge
    dist = ndi.distance_transform_edt(~edge, sampling=_sampling(labels.ndim, anisotropy))
    return objects & (dist < width - 0.5)


def instance_targets(
    labels: np.ndarray,
    config: InstanceTargetConfig | None = None,
    annotated: np.ndarray | None = None,
) -> np.ndarray:
    """Class map for training an instance model from instance labels.

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D instance labels, 0 = background. Not modified.
    config : InstanceTargetConfig, optional
        Boundary width and anisotropy.
    annotated : numpy.ndarray of bool, optional
        Where the labels are complete; elsewhere the map is 0 (ignored). Default:
        everywhere. See :func:`annotated_region` for sparsely annotated frames.

    Returns
    -------
    numpy.ndarray of uint8
        0 = ignored, 1 = background, 2 = interior, 3 = boundary.

    Examples
    --------
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 7
    >>> instance_targets(lab, InstanceTargetConfig(boundary_width=1))[2]
    array([1, 3, 2, 3, 1], dtype=uint8)
    """
    config = config or InstanceTargetConfig()
    labels = _check_labels(labels)
    out = np.full(labels.shape, BACKGROUND, np.uint8)
    out[labels > 0] = INTERIOR
    out[boundary_map(labels, config.boundary_width, config.anisotropy)] = BOUNDARY
    if annotated is not None:
        annotated = np.asarray(annotated, bool)
        if annotated.shape != labels.shape:
            raise ValueError(
                f"annotated mask shape {annotated.shape} differs from labels {labels.shape}."
            )
        out[~annotated] = IGNORE
    return out


def annotated_region(
    labels: np.ndarray,
    markers: np.ndarray,
    margin: float = 8.0,
    anisotropy: float = 1.0,
    min_overlap: float = 0.5,
) -> np.ndarray:
    """Where sparse labels can be trusted: everything except unlabelled objects.

    Some frames label only a few objects (e.g. Cell Tracking Challenge SEG frames),
    while markers of every object are known (e.g. the TRA markers of the same
    frame). A marker counts as annotated when at least ``min_overlap`` of its pixels
    lie in labelled objects; the others, grown by ``margin`` pixels, are excluded.

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D sparse instance labels.
    markers : numpy.ndarray
        Same shape; one id per object (labelled or not), 0 elsewhere.
    margin : float
        Pixels around an unlabelled marker left out as well (its marker may be
        smaller than the object).
    anisotropy : float
        3D only: Z spacing divided by Y/X spacing.
    min_overlap : float
        Fraction of a marker that must be labelled for it to count as annotated.

    Returns
    -------
    numpy.ndarray of bool
        True where the labels are complete (labelled objects are always True).
    """
    labels = _check_labels(labels)
    markers = _check_labels(markers, "markers")
    if markers.shape != labels.shape:
        raise ValueError(f"markers shape {markers.shape} differs from labels {labels.shape}.")
    size = np.bincount(markers.ravel())
    inside = np.bincount(markers.ravel(), weights=(labels > 0).ravel(), minlength=len(size))
    missing = (size > 0) & (inside < min_overlap * np.maximum(size, 1))
    missing[0] = False
    unlabelled = missing[markers]
    if not unlabelled.any():
        return np.ones(labels.shape, bool)
    dist = ndi.distance_transform_edt(~unlabelled, sampling=_sampling(labels.ndim, anisotropy))
    return (labels > 0) | (dist > margin)


def foreground_targets(mask: np.ndarray, config: InstanceTargetConfig | None = None) -> np.ndarray:
    """Class map from a binary foreground mask (touching objects not separated).

    Blobs at least ``config.min_solidity`` convex are taken as single objects.
    Less convex blobs are likely several touching objects: only their outline band
    is trained as boundary, their inside is ignored (0), since where they split
    is unknown. Everything outside the mask is background.

    Parameters
    ----------
    mask : numpy.ndarray
        2D or 3D, nonzero = foreground.
    config : InstanceTargetConfig, optional

    Returns
    -------
    numpy.ndarray of uint8
        0 = ignored, 1 = background, 2 = interior, 3 = boundary.
    """
    from skimage.measure import regionprops

    config = config or InstanceTargetConfig()
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"mask must be one 2D or 3D image; got shape {mask.shape}.")
    blobs, n = ndi.label(mask != 0)
    solid = np.zeros(n + 1, bool)
    for region in regionprops(blobs):
        solid[region.label] = region.solidity >= config.min_solidity
    out = instance_targets(blobs, config)
    clump_inside = ~solid[blobs] & (out == INTERIOR)
    out[clump_inside] = IGNORE
    return out


def median_diameter(labels: np.ndarray | list[np.ndarray]) -> float:
    """Median object diameter in Y/X pixels over one or several label images.

    The diameter of an object is that of a disk with the area of its largest
    Y/X cross-section (so 3D stacks and time series give in-plane diameters).
    Returns 0.0 when there are no objects.
    """
    arrays = labels if isinstance(labels, list | tuple) else [labels]
    areas = []
    for lab in arrays:
        lab = np.asarray(lab)
        ids = np.unique(np.concatenate([[0], lab.ravel()]))  # ids may be sparse (4e9)
        lab = np.searchsorted(ids, lab).astype(np.int64)  # 0 stays 0; objects 1..n
        planes = lab.reshape(-1, *lab.shape[-2:]) if lab.ndim > 2 else lab[None]
        top = np.zeros(len(ids), np.int64)
        for plane in planes:
            counts = np.bincount(plane.ravel(), minlength=len(top))
            np.maximum(top, counts, out=top)
        areas.extend(top[1:][top[1:] > 0].tolist())
    return float(2.0 * np.sqrt(np.median(areas) / np.pi)) if areas else 0.0
