"""Corrected labels as training data: which pixels to learn, what to hold out, how to score.

Used by :func:`cellsight.core.curation.finetune.fine_tune`. A "frame" is one input of the
model: a 2D image for a 2D model (time points and Z slices of stacks are frames of
their own), a 3D stack for a 3D model.
"""

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from cellsight.core.curation.corrections import edited_mask
from cellsight.core.evaluation.metrics import MatchResult, match_in_region

NO_CORRECTIONS = ("No corrections to learn from: correct some objects (or mark frames as "
                  "reviewed) first.")


@dataclass(frozen=True)
class CorrectionFrame:
    """One model input with its corrected labels and where they may be learned.

    Attributes
    ----------
    image, labels : numpy.ndarray
        The frame (2D, or 3D for a 3D model) and its corrected instance labels.
    mask : numpy.ndarray of bool
        Where the labels are trusted (reviewed frame, or around the edits).
    name : str
        Where it comes from, e.g. ``"image 1, frame 4"``.
    """

    image: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    name: str


def _split_frames(array: np.ndarray, model_ndim: int, what: str, index: int) -> np.ndarray:
    """``(n, *spatial)`` view of an image or label array for a ``model_ndim`` model."""
    array = np.asarray(array)
    if array.ndim == model_ndim:
        return array[None]
    if model_ndim == 2 and array.ndim in (3, 4):  # (T|Z, Y, X) or (T, Z, Y, X): 2D slices
        return array.reshape(-1, *array.shape[-2:])
    if model_ndim == 3 and array.ndim == 4:
        return array
    raise ValueError(
        f"{what} {index} has shape {array.shape}; a {model_ndim}D model needs "
        f"{'(Z, Y, X)' if model_ndim == 3 else '(Y, X)'} images, optionally stacked "
        "(time points, Z slices)."
    )


def _frame_names(shape: tuple[int, ...], model_ndim: int, index: int) -> list[str]:
    lead = shape[: len(shape) - model_ndim]
    if not lead:
        return [f"image {index}"]
    axes = ("t", "z") if len(lead) == 2 else ("frame",)
    return [
        f"image {index}, " + ", ".join(f"{a} {i}" for a, i in zip(axes, idx, strict=True))
        for idx in np.ndindex(*lead)
    ]


def _reviewed_frames(shape, model_ndim: int, reviewed) -> np.ndarray | None:
    """Bool per frame from indices along the first axis (None = not given)."""
    if reviewed is None:
        return None
    lead = shape[: len(shape) - model_ndim]
    if not lead:
        return np.array([True])
    chosen = np.zeros(lead[0], bool)
    idx = np.asarray(list(reviewed), int)
    if idx.size and (idx.min() < 0 or idx.max() >= lead[0]):
        raise ValueError(f"Reviewed frame indices {idx.tolist()} are outside 0..{lead[0] - 1}.")
    chosen[idx] = True
    return np.repeat(chosen, int(np.prod(lead[1:], dtype=int)))


def _frame_masks(labels, prediction, annotated, region: str, margin: int, reviewed):
    """Per-frame trusted masks ``(n, *spatial)`` for one label array's frames."""
    if annotated is not None:
        masks = np.asarray(annotated, bool)
    elif region == "edited":
        if prediction is None:
            raise ValueError(
                "Training only on edited regions needs the model's prediction to compare "
                "the corrections with."
            )
        edited = np.stack([edited_mask(p, c) for p, c in zip(prediction, labels, strict=True)])
        masks = _grow(edited, margin)
    else:
        if reviewed is None and prediction is not None:  # frames with at least one edit
            reviewed = np.array([bool(edited_mask(p, c).any())
                                 for p, c in zip(prediction, labels, strict=True)])
        masks = np.ones(labels.shape, bool)
    if reviewed is not None:
        masks = masks & reviewed.reshape(-1, *[1] * (labels.ndim - 1))
    return masks


def _grow(masks: np.ndarray, margin: int) -> np.ndarray:
    if margin <= 0:
        return masks
    out = np.empty_like(masks)
    for i, m in enumerate(masks):
        out[i] = ndi.distance_transform_edt(~m) <= margin if m.any() else m
    return out


def correction_frames(
    images,
    corrected,
    model_ndim: int,
    *,
    predictions=None,
    reviewed=None,
    annotated=None,
    region: str = "frames",
    margin: int = 16,
) -> list[CorrectionFrame]:
    """Split images and corrected labels into model frames and keep those with trusted pixels.

    Parameters
    ----------
    images, corrected : array or sequence of arrays
        Images and their corrected instance labels (same shapes).
    model_ndim : int
        2 or 3: the model's spatial dimensions.
    predictions : array or sequence of arrays, optional
        The model's labels before correction: edits are found by comparing with them.
    reviewed : sequence of (sequence of int or None), optional
        Per image, the indices along its first axis of the frames (time points or
        slices) that were fully reviewed. Default: the frames with an edit when
        ``predictions`` is given, else every frame holding labels.
    annotated : sequence of bool arrays, optional
        Per image, where its labels are complete; overrides ``region``.
    region : {"frames", "edited"}
        Learn whole reviewed frames, or only the edited regions grown by ``margin``.

    Returns
    -------
    list of CorrectionFrame
    """
    out = split_frames(images, corrected, model_ndim, predictions=predictions,
                       reviewed=reviewed, annotated=annotated, region=region, margin=margin)[0]
    if not out:
        raise ValueError(NO_CORRECTIONS)
    return out


def _per_image(images, corrected, predictions, reviewed, annotated):
    """(image, labels, prediction, reviewed, annotated) per image, checked for count."""
    images, corrected = _listed(images), _listed(corrected)
    n = len(images)
    predictions = _listed(predictions) if predictions is not None else [None] * n
    reviewed = list(reviewed) if reviewed is not None else [None] * n
    annotated = _listed(annotated) if annotated is not None else [None] * n
    if not n or len(corrected) != n or len(predictions) != n or len(reviewed) != n \
            or len(annotated) != n:
        raise ValueError(f"Give one label image (and prediction / mask) per image; got {n} "
                         f"images and {len(corrected)} label images.")
    return list(zip(images, corrected, predictions, reviewed, annotated, strict=True))


def _listed(data) -> list:
    if data is None:
        return []
    return list(data) if isinstance(data, list | tuple) else [data]


def _frames_of(i, image, labels, prediction, reviewed, annotated, ndim, region, margin):
    image, labels = np.asarray(image), np.asarray(labels)
    if labels.shape != image.shape:
        raise ValueError(f"Labels {i} have shape {labels.shape}; image {i} has {image.shape}.")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"Labels {i} must be integers; got dtype {labels.dtype}.")
    for other, what in ((prediction, "Prediction"), (annotated, "Annotated mask")):
        if other is not None and np.shape(other) != labels.shape:
            raise ValueError(f"{what} {i} has shape {np.shape(other)}, labels {labels.shape}.")
    frames = _split_frames(image, ndim, "Image", i)
    lab = _split_frames(labels, ndim, "Labels", i)
    pred = None if prediction is None else _split_frames(prediction, ndim, "Prediction", i)
    ann = None if annotated is None else _split_frames(annotated, ndim, "Annotated mask", i)
    masks = _frame_masks(lab, pred, ann, region, margin, _reviewed_frames(labels.shape, ndim,
                                                                           reviewed))
    names = _frame_names(labels.shape, ndim, i)
    keep = [k for k in range(len(frames)) if masks[k].any()
            and (reviewed is not None or annotated is not None or pred is not None
                 or lab[k].any())]
    used = [CorrectionFrame(frames[k], lab[k], masks[k], names[k]) for k in keep]
    kept = set(keep)
    others = [(frames[k], names[k]) for k in range(len(frames)) if k not in kept]
    return used, others


def uncorrected_frames(
    images,
    corrected,
    model_ndim: int,
    *,
    predictions=None,
    reviewed=None,
    annotated=None,
    region: str = "frames",
    margin: int = 16,
    limit: int = 16,
    megapixels: float = 2.0,
) -> list[tuple[np.ndarray, str]]:
    """Frames of the same images that hold no corrections, spread evenly.

    At most ``limit`` frames and about ``megapixels`` in all (at least one frame), so
    small slices are checked in numbers and big frames stay quick.

    Same arguments as :func:`correction_frames`. The fine-tuning check scores the new
    model on them against the old model's confident objects, so a model that learned
    the few corrected frames by heart but got worse elsewhere is caught.

    Returns
    -------
    list of (frame, name)
    """
    others = split_frames(images, corrected, model_ndim, predictions=predictions,
                          reviewed=reviewed, annotated=annotated, region=region,
                          margin=margin)[1]
    return spread_frames(others, limit, megapixels)


def split_frames(images, corrected, model_ndim: int, *, predictions=None, reviewed=None,
                 annotated=None, region: str = "frames", margin: int = 16):
    """(corrected frames, other frames) in one pass; arguments as :func:`correction_frames`.

    Returns
    -------
    list of CorrectionFrame, list of (frame, name)
    """
    used, others = [], []
    for i, args in enumerate(_per_image(images, corrected, predictions, reviewed, annotated)):
        u, o = _frames_of(i, *args, model_ndim, region, margin)
        used, others = used + u, others + o
    return used, others


def spread_frames(others: list, limit: int = 16, megapixels: float = 2.0) -> list:
    """At most ``limit`` of ``others`` (about ``megapixels`` in all), spread evenly."""
    if others:
        limit = min(limit, max(1, int(np.ceil(megapixels * 1e6 / others[0][0].size))))
    if len(others) <= limit:
        return others
    pick = np.unique(np.linspace(0, len(others) - 1, limit).round().astype(int))
    return [others[k] for k in pick]


def split_holdout(
    frames: list[CorrectionFrame], fraction: float, seed: int = 0
) -> tuple[list[CorrectionFrame], list[CorrectionFrame], str]:
    """Keep part of the corrections aside: whole frames if there are two or more.

    With one frame, its trusted pixels are split along X: the last ``fraction`` of the
    width is held out, the rest (minus a gap of 1/20 of the width) is trained on.

    Returns
    -------
    train, held_out : list of CorrectionFrame
    description : str
    """
    if len(frames) >= 2:
        n_out = min(len(frames) - 1, max(1, round(fraction * len(frames))))
        rng = np.random.default_rng(seed)
        out_idx = set(rng.choice(len(frames), n_out, replace=False).tolist())
        held = [f for k, f in enumerate(frames) if k in out_idx]
        train = [f for k, f in enumerate(frames) if k not in out_idx]
        return train, held, f"{n_out} of {len(frames)} corrected frames ({_names(held)})"
    (frame,) = frames
    cols = np.flatnonzero(frame.mask.any(axis=tuple(range(frame.mask.ndim - 1))))
    lo, hi = int(cols.min()), int(cols.max()) + 1
    cut = hi - max(1, round(fraction * (hi - lo)))
    gap = max(1, (hi - lo) // 20)
    x = np.arange(frame.mask.shape[-1])
    train_mask = frame.mask & (x < cut - gap)
    held_mask = frame.mask & (x >= cut)
    if not train_mask.any() or not held_mask.any():
        raise ValueError("The corrected region is too small to keep a part aside for checking.")
    text = f"the right {round(100 * fraction)}% (x >= {cut}) of {frame.name}"
    return [replace(frame, mask=train_mask)], [replace(frame, mask=held_mask)], text


def _names(frames: list[CorrectionFrame]) -> str:
    names = [f.name for f in frames]
    return "; ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def objects_inside(labels: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Labels with only the objects lying mostly (>= half their pixels) inside ``region``."""
    labels = np.asarray(labels).astype(np.int64, copy=False)
    sizes = np.bincount(labels.ravel())
    inside = np.bincount(labels.ravel(), weights=region.ravel(), minlength=len(sizes))
    keep = inside >= 0.5 * np.maximum(sizes, 1)
    keep[0] = False
    return np.where(keep[labels], labels, 0)


def score_frames(frames: list[CorrectionFrame], segment, threshold: float = 0.5) -> MatchResult:
    """Pooled matching of ``segment(frame.image)`` with the corrected labels, per frame.

    Only objects lying mostly inside each frame's trusted mask are counted.
    """
    total = MatchResult(0, 0, 0, ())
    for f in frames:
        pred = segment(f.image)
        total = total + match_in_region(objects_inside(f.labels, f.mask), pred, f.mask, threshold)
    return total
