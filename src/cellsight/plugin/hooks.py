"""npe2 reader and writer functions (return / take plain LayerData, no napari import)."""

import os
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.io.tiff import ImageReadError, is_tiff, read_image, write_image, write_labels

LABEL_HINTS = ("mask", "label", "seg", "man_track")


def _looks_like_labels(path: Path, data: np.ndarray) -> bool:
    name = path.name.lower()
    return data.dtype.kind in "iu" and any(h in name for h in LABEL_HINTS)


def _layer_for(path: Path) -> tuple:
    img = read_image(path)
    kind = "labels" if _looks_like_labels(path, img.data) else "image"
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    meta: dict[str, Any] = {
        "name": name,
        "metadata": {"axes": img.axes, "path": str(path)},
    }
    scale = list(img.scale)
    axes = img.axes
    if kind == "image" and "C" in axes and img.data.shape[axes.index("C")] <= 8:
        c = axes.index("C")
        meta["channel_axis"] = c
        scale.pop(c)
        meta["metadata"]["axes"] = axes.replace("C", "")
    if "S" in axes and axes.endswith("S"):
        meta["rgb"] = True
        scale.pop()
    meta["scale"] = scale
    return (img.data, meta, kind)


def read_tiffs(path: str | list[str]) -> list[tuple]:
    """Read one or several TIFF files into LayerData tuples.

    Label-like integer files (name containing mask/label/seg) open as labels.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    return [_layer_for(Path(p)) for p in paths]


def get_tiff_reader(path: str | list[str]):
    """npe2 reader contribution: return :func:`read_tiffs` for TIFF paths, else None."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_tiff(p) for p in paths):
        return None
    return read_tiffs


def _axes_from_meta(data: np.ndarray, meta: dict) -> str | None:
    axes = (meta.get("metadata") or {}).get("axes")
    if axes and len(axes) == np.ndim(data):
        return axes
    return None


def write_image_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one image layer (TIFF / OME-TIFF)."""
    data = np.asarray(data)
    scale = meta.get("scale")
    write_image(path, data, axes=_axes_from_meta(data, meta), scale=scale)
    return [path]


def write_labels_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one labels layer (unsigned-integer TIFF)."""
    data = np.asarray(data)
    write_labels(path, data, axes=_axes_from_meta(data, meta), scale=meta.get("scale"))
    return [path]


__all__ = [
    "ImageReadError",
    "get_tiff_reader",
    "read_tiffs",
    "write_image_layer",
    "write_labels_layer",
]
