"""Random augmentation of training patches: flips, 90° rotations, intensity, elastic.

Every function takes an image patch ``(C, *spatial)`` and its target ``(*spatial)`` and
returns new arrays (inputs are never modified).
"""

import numpy as np
from scipy import ndimage as ndi

from cellsight.config.training import TrainConfig


def random_flips_rotations(
    image: np.ndarray, target: np.ndarray, rng: np.random.Generator, flips: bool, rotate90: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Flip along random spatial axes and rotate by a random multiple of 90° in Y/X."""
    ndim = target.ndim
    if flips:
        for axis in range(ndim):
            if rng.random() < 0.5:
                image = np.flip(image, axis + 1)
                target = np.flip(target, axis)
    if rotate90 and target.shape[-1] == target.shape[-2]:
        k = int(rng.integers(4))
        image = np.rot90(image, k, axes=(-2, -1))
        target = np.rot90(target, k, axes=(-2, -1))
    return image, target


def random_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random contrast (x0.75-1.33), brightness (±0.1) and gamma (0.7-1.4) per channel."""
    out = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[0]):
        x = image[c].astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        if hi > lo:
            gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
            x = lo + (hi - lo) * ((x - lo) / (hi - lo)) ** gamma
        scale = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))
        out[c] = x * scale + rng.uniform(-0.1, 0.1)
    return out


def _pixel_grid(shape) -> list[np.ndarray]:
    """Pixel coordinates of a patch, one float array per axis."""
    return list(np.meshgrid(*(np.arange(s, dtype=np.float32) for s in shape), indexing="ij"))


def _resample(image, target, coords, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Read image (linear) and target (nearest, ids stay ids) at ``coords``."""
    moved = np.stack(
        [ndi.map_coordinates(ch, coords, order=1, mode=mode) for ch in image]
    ).astype(np.float32)
    moved_target = ndi.map_coordinates(target, coords, order=0, mode=mode)
    return moved, moved_target.astype(target.dtype)


def random_elastic(
    image: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    alpha: float = 4.0,
    grid: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random deformation: displacements of up to ~``alpha`` pixels on a coarse grid.

    The image is resampled linearly, the target with nearest neighbours (classes stay
    whole numbers).
    """
    shape = target.shape
    coords = _pixel_grid(shape)
    for axis in range(len(shape)):
        coarse = rng.normal(0.0, alpha / 2, size=(grid,) * len(shape)).astype(np.float32)
        zoom = [s / grid for s in shape]
        coords[axis] = (
            coords[axis]
            + ndi.zoom(coarse, zoom, order=3, mode="nearest")[tuple(slice(0, s) for s in shape)]
        )
    return _resample(image, target, coords, "reflect")


def random_zoom(
    image: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Zoom Y/X by a random factor in ``[low, high]`` about the patch centre.

    Objects appear larger (factor > 1) or smaller; the patch keeps its shape (edges
    are mirrored when zooming out). Image linear, target nearest neighbours.
    """
    factor = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    shape = target.shape
    coords = _pixel_grid(shape)
    for axis in (-2, -1):
        centre = (shape[axis] - 1) / 2.0
        coords[axis] = centre + (coords[axis] - centre) / factor
    return _resample(image, target, coords, "mirror")


def augment(
    image: np.ndarray,
    target: np.ndarray,
    config: TrainConfig,
    rng: np.random.Generator,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the augmentations switched on in ``config`` to one patch.

    ``channels``: how many leading image channels are intensities (the default: all);
    later ones (e.g. soft class shares) are moved and deformed but keep their values.
    """
    image, target = random_flips_rotations(image, target, rng, config.flips, config.rotate90)
    if config.zoom and rng.random() < 0.5:
        image, target = random_zoom(image, target, rng)
    if config.elastic and rng.random() < 0.5:
        image, target = random_elastic(image, target, rng)
    if config.intensity:
        n = image.shape[0] if channels is None else channels
        image = np.concatenate([random_intensity(image[:n], rng), image[n:]])
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(target)
