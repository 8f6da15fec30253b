"""Overview pictures of results: image panels with label outlines (RGB uint8 arrays)."""

import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Contrast-stretch (1-99.8 percentiles) to uint8 for display."""
    from cellsight.core.segmentation.classical import percentile_normalize

    return (np.clip(percentile_normalize(image), 0, 1) * 255).astype(np.uint8)


def panel(image: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """RGB panel of a 2D image, with label outlines drawn in colour if given."""
    from skimage.segmentation import find_boundaries

    gray = to_uint8(image)
    rgb = np.stack([gray] * 3, axis=-1)
    if labels is not None:
        edges = find_boundaries(labels, mode="inner")
        ids = labels[edges].astype(np.int64)
        colours = np.stack([(ids * 97) % 200 + 55, (ids * 57) % 200 + 55, (ids * 31) % 200 + 55])
        rgb[edges] = colours.T.astype(np.uint8)
    return rgb


def montage(panels: list[np.ndarray], height: int = 256, gap: int = 4) -> np.ndarray:
    """Place RGB panels side by side, each resized to ``height`` pixels."""
    from skimage.transform import resize

    resized = []
    for p in panels:
        width = max(1, round(p.shape[1] * height / p.shape[0]))
        r = resize(p, (height, width), order=0, preserve_range=True, anti_aliasing=False)
        resized.append(r.astype(np.uint8))
        resized.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(resized[:-1], axis=1)
