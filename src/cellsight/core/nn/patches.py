"""Training patches for pixel classifiers: validation split and annotation-biased sampling.

Targets are integer class maps where 0 means "not annotated" (ignored by the loss)
and 1..K are classes. Internally the classes become 0..K-1 and "not annotated" -1.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_INDICES_PER_CLASS = 200_000
MAX_VAL_PATCHES = 32


def to_internal(target: np.ndarray) -> np.ndarray:
    """Map labels 0 (not annotated), 1..K to -1, 0..K-1 as int16."""
    return (np.asarray(target).astype(np.int32) - 1).astype(np.int16)


def pad_to_patch(
    image: np.ndarray, target: np.ndarray, patch_shape: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pad an image (reflect) and target (ignore) so every axis is at least the patch."""
    pad = [(0, max(0, p - s)) for p, s in zip(patch_shape, target.shape, strict=True)]
    if not any(after for _, after in pad):
        return image, target
    image = np.pad(image, [(0, 0), *pad], mode="symmetric")
    target = np.pad(target, pad, mode="constant", constant_values=-1)
    return image, target


def split_validation(
    targets: Sequence[np.ndarray], fraction: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out a stripe at the end of the last axis of every target for validation.

    Returns training targets (stripe set to -1) and validation targets (only the
    stripe annotated). If either side would hold no annotation, everything is used
    for training and the validation targets are empty.
    """
    if fraction <= 0:
        return list(targets), []
    train, val = [], []
    for t in targets:
        width = max(1, int(round(fraction * t.shape[-1])))
        tr = t.copy()
        tr[..., -width:] = -1
        va = np.full_like(t, -1)
        va[..., -width:] = t[..., -width:]
        train.append(tr)
        val.append(va)
    if not any((t >= 0).any() for t in train) or not any((v >= 0).any() for v in val):
        return list(targets), []
    return train, val


def _random_start(size: int, patch: int, rng: np.random.Generator) -> int:
    return int(rng.integers(0, size - patch + 1))


@dataclass
class PatchSampler:
    """Draws training patches, most of them centred on an annotated pixel.

    A class is chosen uniformly among the annotated classes, then an annotated pixel
    of that class, then a patch around it (jittered, clipped to the image). With
    probability ``1 - annotated_fraction`` the patch is placed uniformly instead.
    With probability ``hard_fraction`` (taken first) the patch is centred on one of
    the "hard" pixels set by :meth:`set_hard` (e.g. those the model gets wrong), when
    there are any.
    """

    images: list[np.ndarray]
    targets: list[np.ndarray]
    patch_shape: tuple[int, ...]
    n_classes: int
    annotated_fraction: float
    rng: np.random.Generator
    hard_fraction: float = 0.0

    def __post_init__(self):
        pairs = [
            pad_to_patch(i, t, self.patch_shape)
            for i, t in zip(self.images, self.targets, strict=True)
        ]
        self.images = [p[0] for p in pairs]
        self.targets = [p[1] for p in pairs]
        self._where: dict[int, list[tuple[int, np.ndarray]]] = {}
        for k, t in enumerate(self.targets):
            flat = t.ravel()
            for c in range(self.n_classes):
                idx = np.flatnonzero(flat == c)
                if idx.size > MAX_INDICES_PER_CLASS:
                    idx = self.rng.choice(idx, MAX_INDICES_PER_CLASS, replace=False)
                if idx.size:
                    self._where.setdefault(c, []).append((k, idx.astype(np.int64)))
        if not self._where:
            raise ValueError("The labels hold no annotated pixels (all 0): nothing to train on.")
        self._classes = sorted(self._where)
        self._hard: dict[int, np.ndarray] = {}

    def set_hard(self, index: int, mask: np.ndarray) -> None:
        """Mark the pixels of image ``index`` (a boolean mask of its target's shape) as hard."""
        idx = np.flatnonzero(mask)
        if idx.size > MAX_INDICES_PER_CLASS:
            idx = self.rng.choice(idx, MAX_INDICES_PER_CLASS, replace=False)
        if idx.size:
            self._hard[index] = idx.astype(np.int64)
        else:
            self._hard.pop(index, None)

    @property
    def hard_pixels(self) -> int:
        """Number of pixels currently marked hard (after subsampling)."""
        return sum(i.size for i in self._hard.values())

    @property
    def classes_present(self) -> list[int]:
        """Internal class ids (0-based) that have at least one annotated pixel."""
        return list(self._classes)

    def _pick(self, where: list[tuple[int, np.ndarray]]) -> tuple[int, tuple[int, ...]]:
        """Image and patch start around a random pixel of a random ``(image, indices)``."""
        k, idx = where[int(self.rng.integers(len(where)))]
        point = np.unravel_index(int(idx[int(self.rng.integers(idx.size))]), self.targets[k].shape)
        starts = []
        for p, size, ps in zip(point, self.targets[k].shape, self.patch_shape, strict=True):
            jitter = int(self.rng.integers(-(ps // 4), ps // 4 + 1))
            starts.append(int(np.clip(p - ps // 2 + jitter, 0, size - ps)))
        return k, tuple(starts)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """Return one ``(image (C, *patch), target (*patch))`` pair (views)."""
        if self._hard and self.rng.random() < self.hard_fraction:
            k, starts = self._pick(list(self._hard.items()))
        elif self.rng.random() < self.annotated_fraction:
            c = self._classes[int(self.rng.integers(len(self._classes)))]
            k, starts = self._pick(self._where[c])
        else:
            k = int(self.rng.integers(len(self.targets)))
            shape = self.targets[k].shape
            starts = tuple(
                _random_start(s, p, self.rng) for s, p in zip(shape, self.patch_shape, strict=True)
            )
        sl = tuple(slice(s, s + p) for s, p in zip(starts, self.patch_shape, strict=True))
        return self.images[k][(slice(None), *sl)], self.targets[k][sl]


def validation_patches(
    images: Sequence[np.ndarray],
    val_targets: Sequence[np.ndarray],
    patch_shape: Sequence[int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cut fixed patches covering the validation stripes (at most ``MAX_VAL_PATCHES``).

    Returns stacked images ``(N, C, *patch)`` and targets ``(N, *patch)``, or None
    when no validation pixel is annotated.
    """
    found_img, found_tgt = [], []
    for image, target in zip(images, val_targets, strict=True):
        image, target = pad_to_patch(image, target, patch_shape)
        ranges = []
        for axis, (size, ps) in enumerate(zip(target.shape, patch_shape, strict=True)):
            if axis == target.ndim - 1:
                ranges.append([size - ps])  # the stripe sits at the end of the last axis
            else:
                ranges.append(sorted({*range(0, size - ps + 1, ps), size - ps}))
        for starts in np.array(np.meshgrid(*ranges, indexing="ij")).reshape(target.ndim, -1).T:
            sl = tuple(slice(int(s), int(s) + p) for s, p in zip(starts, patch_shape, strict=True))
            if (target[sl] >= 0).any():
                found_img.append(image[(slice(None), *sl)])
                found_tgt.append(target[sl])
    if not found_tgt:
        return None
    if len(found_tgt) > MAX_VAL_PATCHES:
        keep = np.sort(rng.choice(len(found_tgt), MAX_VAL_PATCHES, replace=False))
        found_img = [found_img[i] for i in keep]
        found_tgt = [found_tgt[i] for i in keep]
    return np.stack(found_img).astype(np.float32), np.stack(found_tgt)
