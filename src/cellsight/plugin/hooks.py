"""npe2 reader and writer functions (return / take plain LayerData, no napari import)."""

import os
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.io.omezarr import (
    LazyImage,
    is_ome_zarr,
    label_names,
    read_ome_zarr,
    to_ngff_order,
    write_ome_zarr,
)
from cellsight.io.tiff import (
    ImageReadError,
    is_tiff,
    read_image,
    series_count,
    write_image,
    write_labels,
)

LABEL_HINTS = ("mask", "label", "seg", "man_track")


def _looks_like_labels(path: Path, data: np.ndarray) -> bool:
    name = path.name.lower()
    return data.dtype.kind in "iu" and any(h in name for h in LABEL_HINTS)


def _layer_for(path: Path, series: int | None = None) -> tuple:
    img = read_image(path, series=series)
    kind = "labels" if _looks_like_labels(path, img.data) else "image"
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if series is not None:
        name = f"{name} [series {series}]"
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
    shown = meta["metadata"]["axes"].replace("S", "")
    if len(shown) == len(scale):
        meta.update(layer_units(shown, img.metadata.get("units", {})))
    return (img.data, meta, kind)


def layer_units(axes: str, units: dict[str, str]) -> dict[str, list[str]]:
    """napari ``axis_labels`` and ``units`` for a layer with ``axes`` (``pixel`` if unknown)."""
    return {"axis_labels": [a.lower() for a in axes],
            "units": [units.get(a, "pixel") for a in axes]}


def read_tiffs(path: str | list[str]) -> list[tuple]:
    """Read one or several TIFF files into LayerData tuples.

    Label-like integer files (name containing mask/label/seg) open as labels. A file
    holding several image series opens as one layer per series (``name [series K]``).
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers = []
    for p in map(Path, paths):
        n = series_count(p) if p.is_file() else 1
        if n > 1:
            layers.extend(_layer_for(p, k) for k in range(n))
        else:
            layers.append(_layer_for(p))
    return layers


def get_tiff_reader(path: str | list[str]):
    """npe2 reader contribution: return :func:`read_tiffs` for TIFF paths, else None."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_tiff(p) for p in paths):
        return None
    return read_tiffs


def _lazy_layer(img: LazyImage, kind: str) -> tuple:
    """A multiscale LayerData tuple (dask levels, nothing loaded) from a LazyImage."""
    meta: dict[str, Any] = {
        "name": img.name,
        "multiscale": True,
        "metadata": {"axes": img.axes, "path": str(img.path)},
    }
    scale = list(img.scale)
    if kind == "image" and "C" in img.axes and img.data.shape[img.axes.index("C")] <= 8:
        c = img.axes.index("C")
        meta["channel_axis"] = c
        scale.pop(c)
        meta["metadata"]["axes"] = img.axes.replace("C", "")
    meta["scale"] = scale
    return (list(img.levels), meta, kind)


def read_ome_zarr_layers(path: str | list[str]) -> list[tuple]:
    """Open an OME-Zarr lazily: the image as a multiscale layer, ``labels/*`` as labels.

    A label image (``img.zarr/labels/nuclei``) opens as one labels layer, the
    ``labels`` folder itself as one labels layer per label image.
    """
    p = Path(path if isinstance(path, str | os.PathLike) else path[0])
    if p.name == "labels" and label_names(p.parent):
        return [_lazy_layer(read_ome_zarr(p / n), "labels") for n in label_names(p.parent)]
    img = read_ome_zarr(p)
    if img.kind == "labels":
        return [_lazy_layer(img, "labels")]
    layers = [_lazy_layer(img, "image")]
    for name in label_names(p):
        layers.append(_lazy_layer(read_ome_zarr(p / "labels" / name), "labels"))
    return layers


def get_ome_zarr_reader(path: str | list[str]):
    """npe2 reader contribution: return :func:`read_ome_zarr_layers` for one OME-Zarr."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if len(paths) != 1 or not Path(paths[0]).is_dir() or not is_ome_zarr(paths[0]):
        return None
    return read_ome_zarr_layers


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


def _ngff_layer(data: Any, meta: dict) -> tuple:
    """Level-0 data of a layer in NGFF axis order, with its axes and scale."""
    if isinstance(data, list | tuple):  # a multiscale layer: write level 0, rebuild the rest
        data = data[0]
    ndim = np.ndim(data) if not hasattr(data, "ndim") else data.ndim
    axes = _axes_from_meta(data, meta) or "TCZYX"[-ndim:]
    data, axes, scale, _ = to_ngff_order(data, axes, meta.get("scale"))
    return data, axes, scale


def write_ome_zarr_image_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one image layer (multiscale OME-Zarr 0.4; never overwrites)."""
    data, axes, scale = _ngff_layer(data, meta)
    write_ome_zarr(path, data, axes=axes, scale=scale)
    return [path]


def write_ome_zarr_labels_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one labels layer (OME-Zarr 0.4 label image; never overwrites)."""
    data, axes, scale = _ngff_layer(data, meta)
    write_ome_zarr(path, data, axes=axes, scale=scale, kind="labels")
    return [path]


def write_tracks_csv_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one Tracks layer: a CSV table, parents from the layer's graph.

    Rows ``node_id, t, [z,] y, x, track_id, parent_id`` as ``cellsight track --format
    csv`` writes them. napari's save dialog has already asked before replacing a file.
    """
    from cellsight.core.tracking.export import write_tracks_layer

    return [str(write_tracks_layer(path, data, meta.get("graph"), "csv", overwrite=True))]


def write_tracks_geff_layer(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer for one Tracks layer: a GEFF zarr store (never replaces one)."""
    from cellsight.core.tracking.export import write_tracks_layer

    return [str(write_tracks_layer(path, data, meta.get("graph"), "geff"))]


__all__ = [
    "ImageReadError",
    "get_ome_zarr_reader",
    "get_tiff_reader",
    "read_ome_zarr_layers",
    "read_tiffs",
    "write_image_layer",
    "write_labels_layer",
    "write_ome_zarr_image_layer",
    "write_ome_zarr_labels_layer",
    "write_tracks_csv_layer",
    "write_tracks_geff_layer",
]
