"""Arranging images for Noise2Void: axes, normalisation, patches, held-out validation.

Internally every image is a ``(S, C, *spatial)`` float32 array: ``S`` samples (time
points or other stacked frames, trained on as independent samples), ``C`` channels
(fed together as input channels) and 2 (Y, X) or 3 (Z, Y, X) spatial axes.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_AXES = "TQI"
CHANNEL_AXES = "CS"
SPATIAL_AXES = "ZYX"


@dataclass(frozen=True)
class Layout:
    """How an image with named ``axes`` maps to ``(S, C, *spatial)`` and back."""

    axes: str
    shape: tuple[int, ...]

    @property
    def order(self) -> tuple[int, ...]:
        """Axis permutation: sample axes, then channel axes, then Z, Y, X."""
        ax = self.axes
        samples = [ax.index(a) for a in ax if a in SAMPLE_AXES]
        channels = [ax.index(a) for a in ax if a in CHANNEL_AXES]
        return tuple(samples + channels + [ax.index(a) for a in self.spatial_axes])

    @property
    def spatial_axes(self) -> str:
        """Spatial axis letters in Z, Y, X order."""
        return "".join(a for a in SPATIAL_AXES if a in self.axes)

    @property
    def canonical_shape(self) -> tuple[int, ...]:
        """``(S, C, *spatial)``."""
        size = dict(zip(self.axes, self.shape, strict=True))
        samples = math.prod(size[a] for a in self.axes if a in SAMPLE_AXES)
        channels = math.prod(size[a] for a in self.axes if a in CHANNEL_AXES)
        return (samples, channels, *(size[a] for a in self.spatial_axes))

    def to_canonical(self, image: np.ndarray) -> np.ndarray:
        """``image`` (in ``axes`` order) as a ``(S, C, *spatial)`` array (a view if possible)."""
        return np.transpose(image, self.order).reshape(self.canonical_shape)

    def from_canonical(self, data: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_canonical` for an array of the full canonical shape."""
        transposed = tuple(self.shape[i] for i in self.order)
        return np.transpose(data.reshape(transposed), np.argsort(self.order))

    def crop_to_original(
        self, crop: np.ndarray, sample: int, starts: Sequence[int]
    ) -> tuple[np.ndarray, tuple[int, ...]]:
        """Place a ``(C, *spatial)`` crop of one sample back into ``axes`` order.

        Returns the crop with every axis of the original image (sample axes of
        length 1) and its start position along every original axis.
        """
        size = dict(zip(self.axes, self.shape, strict=True))
        sample_axes = [a for a in self.axes if a in SAMPLE_AXES]
        sample_pos = np.unravel_index(sample, [size[a] for a in sample_axes]) if sample_axes else ()
        channel_shape = [size[a] for a in self.axes if a in CHANNEL_AXES]
        lengths = [1] * len(sample_axes) + channel_shape + list(crop.shape[1:])
        data = crop.reshape(lengths)
        origin_by_axis = dict(zip(sample_axes, (int(p) for p in sample_pos), strict=True))
        origin_by_axis.update(dict(zip(self.spatial_axes, (int(s) for s in starts), strict=True)))
        origin = tuple(origin_by_axis.get(a, 0) for a in self.axes)
        return np.transpose(data, np.argsort(self.order)), origin


def default_axes(ndim: int) -> str:
    """Axes assumed when none are given: only 2D images are unambiguous."""
    if ndim == 2:
        return "YX"
    raise ValueError(
        f"A {ndim}D array is ambiguous: pass its axes, e.g. 'ZYX' for a volume, 'TYX' "
        "for a time series of 2D frames, 'CYX' for channels."
    )


def make_layout(image: np.ndarray, axes: str | None) -> Layout:
    """Check ``axes`` against ``image`` and return its :class:`Layout`.

    Raises
    ------
    ValueError
        If the axes do not match the image, repeat a letter, use an unknown letter or
        lack Y and X.
    """
    axes = (axes or default_axes(np.ndim(image))).upper()
    if len(axes) != np.ndim(image):
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the image has {np.ndim(image)} "
            f"dimensions (shape {np.shape(image)})."
        )
    unknown = set(axes) - set(SAMPLE_AXES + CHANNEL_AXES + SPATIAL_AXES)
    if unknown or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} must use each of T, C, Z, Y, X (and Q, S) at most once.")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain Y and X.")
    return Layout(axes, tuple(int(s) for s in np.shape(image)))


def channel_stats(data: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of a ``(S, C, *spatial)`` array.

    Raises
    ------
    ValueError
        If a channel is constant (nothing to denoise, and no scale to normalise with).
    """
    axes = (0, *range(2, data.ndim))
    mean = data.mean(axis=axes, dtype=np.float64)
    std = data.std(axis=axes, dtype=np.float64)
    flat = [c for c, s in enumerate(std) if not s > 0]
    if flat:
        raise ValueError(f"Channel(s) {flat} of the image are constant; nothing to denoise.")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def normalise(data: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(data - mean) / std`` per channel of a ``(S, C, *spatial)`` array (new float32)."""
    shape = (1, len(mean)) + (1,) * (data.ndim - 2)
    m = np.asarray(mean, np.float32).reshape(shape)
    s = np.asarray(std, np.float32).reshape(shape)
    return (np.asarray(data, np.float32) - m) / s


def denormalise(data: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Inverse of :func:`normalise` (new float32 array)."""
    shape = (1, len(mean)) + (1,) * (data.ndim - 2)
    m = np.asarray(mean, np.float32).reshape(shape)
    s = np.asarray(std, np.float32).reshape(shape)
    return (np.asarray(data, np.float32) * s + m).astype(np.float32)


def fit_patch(spatial_shape: Sequence[int], wanted: Sequence[int], divisor: int) -> tuple:
    """Largest patch <= ``wanted`` that fits the image and is a multiple of ``divisor``.

    Raises
    ------
    ValueError
        If the image is smaller than ``divisor`` along some axis.
    """
    patch = []
    for size, want in zip(spatial_shape, wanted, strict=True):
        p = (min(size, max(want, divisor)) // divisor) * divisor
        if p < divisor:
            raise ValueError(
                f"The image is {size} pixels along an axis; this U-Net needs at least "
                f"{divisor} (2**depth). Use a smaller depth."
            )
        patch.append(p)
    return tuple(patch)


class PatchSampler:
    """Random training patches and fixed, held-out validation patches.

    Validation data are whole frames when there are enough samples (at least one
    frame per ``val_fraction``), else a stripe at the end of the longest of Y and X.
    Training patches never overlap the held-out data.

    Parameters
    ----------
    data : numpy.ndarray
        ``(S, C, *spatial)`` normalised float32 array.
    patch : tuple of int
        Spatial patch shape (fits inside the image).
    val_fraction : float
        Share of the data held out (0 = no validation).
    rng : numpy.random.Generator
    max_val_patches : int
        Upper bound on the number of validation patches.
    """

    def __init__(self, data, patch, val_fraction, rng, max_val_patches=16):
        self.data = data
        self.patch = tuple(patch)
        self.rng = rng
        n_samples = data.shape[0]
        self.train_samples = np.arange(n_samples)
        self.limits = list(data.shape[2:])  # training region per spatial axis
        self.val = None
        self.val_kind = "none"
        if val_fraction <= 0:
            return
        n_val_frames = int(round(n_samples * val_fraction))
        if n_val_frames >= 1 and n_samples - n_val_frames >= 1:
            self._hold_out_frames(n_val_frames, max_val_patches)
        else:
            self._hold_out_stripe(val_fraction, max_val_patches)

    def _hold_out_frames(self, n_val: int, max_patches: int) -> None:
        frames = np.unique(np.linspace(0, self.data.shape[0] - 1, n_val + 2)[1:-1].round())
        frames = frames.astype(int)
        self.train_samples = np.setdiff1d(np.arange(self.data.shape[0]), frames)
        self.val_kind = f"{len(frames)} held-out frame(s)"
        self.val = self._tile_region(frames, list(self.data.shape[2:]), [0] * len(self.patch),
                                     max_patches)

    def _hold_out_stripe(self, fraction: float, max_patches: int) -> None:
        spatial = list(self.data.shape[2:])
        axis = len(spatial) - 1 if spatial[-1] >= spatial[-2] else len(spatial) - 2
        width = max(self.patch[axis], math.ceil(spatial[axis] * fraction))
        if spatial[axis] - width < self.patch[axis]:
            return  # too small to hold anything out without overlap
        self.limits[axis] = spatial[axis] - width
        self.val_kind = f"held-out stripe of {width} pixels along {'ZYX'[3 - len(spatial) + axis]}"
        starts = [0] * len(spatial)
        starts[axis] = spatial[axis] - width
        self.val = self._tile_region(np.arange(self.data.shape[0]), spatial, starts, max_patches)

    def _tile_region(self, samples, stop, start, max_patches) -> np.ndarray:
        """Non-overlapping patches covering ``[start, stop)`` in the given samples."""
        ranges = [range(a, b - p + 1, p) for a, b, p in zip(start, stop, self.patch, strict=True)]
        corners = [(s, *c) for s in samples for c in itertools.product(*ranges)]
        pick = np.random.default_rng(12345).permutation(len(corners))[:max_patches]
        return np.stack([self._cut(corners[i][0], corners[i][1:]) for i in sorted(pick)])

    def _cut(self, sample: int, corner: Sequence[int]) -> np.ndarray:
        sl = tuple(slice(c, c + p) for c, p in zip(corner, self.patch, strict=True))
        return self.data[(sample, slice(None), *sl)]

    def train_batch(self, batch_size: int, augment: bool) -> np.ndarray:
        """A ``(batch_size, C, *patch)`` float32 array of random training patches."""
        samples = self.rng.choice(self.train_samples, size=batch_size)
        highs = [lim - p + 1 for lim, p in zip(self.limits, self.patch, strict=True)]
        corners = self.rng.integers(0, highs, size=(batch_size, len(highs)))
        patches = [self._cut(s, c) for s, c in zip(samples, corners, strict=True)]
        if augment:
            patches = [self._augment(p) for p in patches]
        return np.ascontiguousarray(np.stack(patches), dtype=np.float32)

    def _augment(self, patch: np.ndarray) -> np.ndarray:
        nd = patch.ndim - 1
        flips = [1 + a for a in range(nd) if self.rng.random() < 0.5]
        if flips:
            patch = np.flip(patch, axis=flips)
        if patch.shape[-1] == patch.shape[-2]:
            patch = np.rot90(patch, k=int(self.rng.integers(4)), axes=(nd - 1, nd))
        return patch
