"""TIFF / OME-TIFF opened lazily (dask over tifffile's zarr interface).

Axes and pixel size are read exactly as :func:`cellsight.io.tiff.read_image` reads
them; the result is reordered to NGFF axis order for :mod:`cellsight.io.omezarr`.
"""

import os
from pathlib import Path

from cellsight.io.omezarr import LazyImage, normalise_unit, to_ngff_order
from cellsight.io.tiff import ImageReadError, _normalise_axes, _one_line, _pick_series, _read_scale


def _ome_units(tif, axes: str) -> dict[str, str]:
    import tifffile

    try:
        image = tifffile.xml2dict(tif.ome_metadata)["OME"].get("Image", {})
    except Exception:  # malformed OME-XML: units unknown
        return {}
    pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})
    return {
        ax: pixels.get(f"PhysicalSize{ax}Unit", "µm")
        for ax in "ZYX"
        if ax in axes and pixels.get(f"PhysicalSize{ax}")
    }


def _read_units(tif, axes: str) -> tuple[str | None, ...]:
    """Units of the pixel sizes: OME-XML ``PhysicalSize*Unit``, ImageJ ``unit``."""
    found: dict[str, str] = {}
    if tif.is_ome:
        found = _ome_units(tif, axes)
    elif tif.is_imagej:
        meta = tif.imagej_metadata or {}
        unit = meta.get("unit")
        if unit and tif.pages[0].tags.get("XResolution") is not None:
            found = {ax: unit for ax in "YX"}
            if meta.get("spacing"):
                found["Z"] = unit
    return tuple(normalise_unit(found.get(ax)) for ax in axes)


def read_tiff_lazy(path: str | os.PathLike) -> LazyImage:
    """Open a TIFF / OME-TIFF as dask arrays without reading the pixels.

    Parameters
    ----------
    path : str or PathLike
        The file to open.

    Returns
    -------
    LazyImage
        Axes in NGFF order (``TCZYX``, RGB samples as ``C``); the levels of a
        pyramidal OME-TIFF become ``levels``.

    Raises
    ------
    ImageReadError
        If the file does not exist, is a folder or cannot be decoded.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from cellsight.io.tiff import write_image
    >>> tif = write_image(pathlib.Path(tempfile.mkdtemp()) / "a.tif", np.ones((2, 4, 5)),
    ...                   axes="CYX")
    >>> read_tiff_lazy(tif).data.shape
    (2, 4, 5)
    """
    import dask.array as da
    import tifffile
    import zarr

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"Cannot read {path}: no such file.")
    if path.is_dir():
        raise ImageReadError(f"Cannot read {path}: it is a folder, not a TIFF file.")
    try:
        with tifffile.TiffFile(path) as tif:
            series = _pick_series(tif, path, None)
            axes = _normalise_axes(series.axes, len(series.shape))
            scale = _read_scale(tif, axes)
            units = _read_units(tif, axes)
            n_levels = len(series.levels)
        levels = [
            da.from_zarr(zarr.open(tifffile.imread(path, aszarr=True, series=0, level=i),
                                   mode="r"))
            for i in range(n_levels)
        ]
    except ImageReadError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError) as exc:
        raise ImageReadError(f"Cannot read {path} as a TIFF image: {_one_line(exc)}") from exc
    if levels[0].size == 0:
        raise ImageReadError(f"Cannot read {path}: the image is empty (shape {levels[0].shape}).")
    ordered = [to_ngff_order(level, axes, scale, units) for level in levels]
    data, axes, scale, units = ordered[0]
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return LazyImage(data=data, axes=axes, scale=scale, units=units,
                     levels=[o[0] for o in ordered], path=path, name=name)
