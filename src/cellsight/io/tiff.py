"""TIFF and OME-TIFF reading and writing that keeps axes and pixel size.

Reads plain, ImageJ, OME and LZW-compressed (Cell Tracking Challenge) TIFFs through
tifffile + imagecodecs. Writes atomically; labels are always written as integers.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.io.atomic import atomic_path

TIFF_SUFFIXES = (".tif", ".tiff")


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file and the cause."""


@dataclass
class ImageData:
    """An image array with its axes and physical pixel size.

    Attributes
    ----------
    data : numpy.ndarray
    axes : str
        One letter per dimension from ``TZCYX`` (plus ``S`` for RGB samples).
    scale : tuple of float
        Pixel size per dimension (1.0 where unknown).
    metadata : dict
        Anything else worth keeping (source path, units).
    """

    data: np.ndarray
    axes: str
    scale: tuple[float, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


def is_tiff(path: str | os.PathLike) -> bool:
    """Return True if ``path`` has a TIFF suffix (``.tif``, ``.tiff``, ``.ome.tif``)."""
    return str(path).lower().endswith(TIFF_SUFFIXES)


def _default_axes(ndim: int) -> str:
    return "TZCYX"[-ndim:] if ndim <= 5 else "Q" * (ndim - 5) + "TZCYX"


def _normalise_axes(axes: str, ndim: int) -> str:
    """Map tifffile's axis letters onto TZCYX(S); unknown letters become guesses."""
    axes = axes.upper().replace("I", "T" if "T" not in axes.upper() else "Q")
    if len(axes) != ndim:
        return _default_axes(ndim)
    return axes


def _ome_scale(tif, axes: str) -> dict[str, float]:
    import tifffile

    try:
        ome = tifffile.xml2dict(tif.ome_metadata)["OME"]
    except Exception:  # malformed OME-XML: fall back to unit scale
        return {}
    image = ome.get("Image", {})
    image = image[0] if isinstance(image, list) else image
    pixels = image.get("Pixels", {})
    out = {}
    for ax in "ZYX":
        value = pixels.get(f"PhysicalSize{ax}")
        if value:
            out[ax] = float(value)
    return out


def _resolution_scale(page) -> dict[str, float]:
    out = {}
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        t = page.tags.get(tag)
        if t is None:
            continue
        num, den = t.value
        if num and den and num != den:
            out[ax] = float(den) / float(num)
    return out


def _read_units(tif, axes: str, scale: tuple[float, ...]) -> dict[str, str]:
    """Physical unit per axis letter where the file says (OME-XML, ImageJ), NGFF names."""
    from cellsight.io.omezarr import normalise_unit

    units: dict[str, str] = {}
    try:
        if tif.is_ome:
            ome = tifffile_xml(tif)
            image = ome.get("Image", {})
            image = image[0] if isinstance(image, list) else image
            pixels = image.get("Pixels", {})
            for ax in "ZYX":
                if pixels.get(f"PhysicalSize{ax}"):
                    units[ax] = normalise_unit(pixels.get(f"PhysicalSize{ax}Unit") or "µm")
            if pixels.get("TimeIncrement"):
                units["T"] = normalise_unit(pixels.get("TimeIncrementUnit") or "s")
        elif tif.is_imagej:
            unit = (tif.imagej_metadata or {}).get("unit")
            if unit and unit.lower() not in ("pixel", "pixels", ""):
                unit = unit.replace("\\u00B5", "µ")
                for ax, s in zip(axes, scale, strict=True):
                    if ax in "ZYX" and s != 1.0:
                        units[ax] = normalise_unit(unit)
    except Exception:  # malformed metadata: no units (pixels)
        return {}
    return units


def tifffile_xml(tif) -> dict:
    """The OME-XML of an open TIFF as a dict (``{}`` when malformed)."""
    import tifffile

    try:
        return tifffile.xml2dict(tif.ome_metadata)["OME"]
    except Exception:
        return {}


def _read_scale(tif, axes: str) -> tuple[float, ...]:
    found: dict[str, float] = {}
    if tif.is_ome:
        found = _ome_scale(tif, axes)
    elif tif.is_imagej:
        found = _resolution_scale(tif.pages[0])
        spacing = (tif.imagej_metadata or {}).get("spacing")
        if spacing:
            found["Z"] = float(spacing)
    elif tif.is_shaped:
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
        scale = meta.get("scale")
        if scale and len(scale) == len(axes):
            return tuple(float(s) for s in scale)
    return tuple(found.get(ax, 1.0) for ax in axes)


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (decoders add advice on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pick_series(tif, path: Path, series: int | None):
    """The series to read: the only one, or ``series``; several without a choice are refused."""
    found = tif.series
    if not found:
        raise ImageReadError(f"Cannot read {path}: the TIFF holds no image.")
    if series is None:
        if len(found) > 1:
            shapes = ", ".join(str(tuple(s.shape)) for s in found[:4])
            raise ImageReadError(
                f"{path} holds {len(found)} image series (shapes {shapes}"
                f"{', ...' if len(found) > 4 else ''}); cellsight reads one image per file: "
                "save the series you want as its own TIFF (e.g. in Fiji).")
        return found[0]
    if not 0 <= series < len(found):
        raise ImageReadError(f"{path} holds {len(found)} image series; there is no series "
                             f"{series}.")
    return found[series]


def read_image(path: str | os.PathLike, series: int | None = None) -> ImageData:
    """Read a TIFF / OME-TIFF file with its axes and pixel size.

    Parameters
    ----------
    path : str or PathLike
        The file to read.
    series : int, optional
        Which image series to read from a file holding several (a multi-position
        OME-TIFF, pages appended separately). Without it such a file is refused rather
        than silently reduced to its first series.

    Returns
    -------
    ImageData

    Raises
    ------
    ImageReadError
        If the file does not exist, is not a TIFF, is damaged or truncated, or holds
        several series and ``series`` is not given.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "nuclei.tif")
    >>> _ = write_image(path, np.zeros((4, 5), np.uint8))
    >>> img = read_image(path)
    >>> img.axes, img.data.shape
    ('YX', (4, 5))
    """
    import tifffile

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"Cannot read {path}: no such file.")
    if path.is_dir():
        raise ImageReadError(f"Cannot read {path}: it is a folder, not a TIFF file.")
    try:
        with tifffile.TiffFile(path) as tif:
            chosen = _pick_series(tif, path, series)
            data = chosen.asarray()
            axes = _normalise_axes(chosen.axes, data.ndim)
            scale = _read_scale(tif, axes)
            units = _read_units(tif, axes, scale)
    except ImageReadError:
        raise
    except tifffile.TiffFileError as exc:
        raise ImageReadError(f"Cannot read {path} as a TIFF image: {_one_line(exc)}") from exc
    except MemoryError:
        raise
    except Exception as exc:  # decoders (DeflateError, LZW...), truncated files, bad tags
        raise ImageReadError(f"Cannot read {path}: the TIFF is damaged or truncated "
                             f"({_one_line(exc)}).") from exc
    if data.size == 0:
        raise ImageReadError(f"Cannot read {path}: the image is empty (shape {data.shape}).")
    meta = {"path": str(path)}
    if units:
        meta["units"] = units
    return ImageData(data=data, axes=axes, scale=scale, metadata=meta)


def series_count(path: str | os.PathLike) -> int:
    """Number of image series in a TIFF file (see ``series`` of :func:`read_image`)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.series)
    except Exception as exc:
        raise ImageReadError(f"Cannot read {path} as a TIFF image: {_one_line(exc)}") from exc


def write_image(
    path: str | os.PathLike,
    data: np.ndarray,
    axes: str | None = None,
    scale: tuple[float, ...] | None = None,
    compression: str | None = "zlib",
) -> Path:
    """Write ``data`` to a TIFF file atomically, keeping axes and pixel size.

    Files named ``*.ome.tif(f)`` are written as OME-TIFF (physical sizes in the
    OME-XML); other names get tifffile's shaped metadata (axes and scale as JSON).

    Parameters
    ----------
    path : str or PathLike
        Destination; parent folders are created. An existing file is replaced only
        once the new one is complete.
    data : numpy.ndarray
    axes : str, optional
        One letter per dimension from ``TZCYXS``; defaults to the trailing
        letters of ``TZCYX``.
    scale : tuple of float, optional
        Pixel size per dimension.
    compression : str or None
        tifffile compression name (``"zlib"``, ``"lzw"``, None).

    Returns
    -------
    pathlib.Path
        The written path.

    Examples
    --------
    An OME-TIFF keeps the pixel size in microns:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "cells.ome.tif")
    >>> _ = write_image(path, np.zeros((3, 8, 8), np.uint16), axes="ZYX", scale=(2.0, 0.5, 0.5))
    >>> img = read_image(path)
    >>> img.axes, img.scale
    ('ZYX', (2.0, 0.5, 0.5))
    """
    import tifffile

    data = np.asarray(data)
    if data.ndim < 2:
        raise ValueError(f"An image needs at least 2 dimensions (Y, X); got shape {data.shape}.")
    axes = (axes or _default_axes(data.ndim)).upper()
    if len(axes) != data.ndim:
        raise ValueError(
            f"axes {axes!r} has {len(axes)} letters but the data has {data.ndim} dims."
        )
    scale = tuple(float(s) for s in scale) if scale is not None else (1.0,) * data.ndim
    if len(scale) != data.ndim:
        raise ValueError(f"scale has {len(scale)} values but the data has {data.ndim} dims.")
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ValueError(f"{path}: images are written as TIFF; give a name ending in "
                         f"{' or '.join(TIFF_SUFFIXES)}.")
    is_ome = path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    kwargs: dict[str, Any] = {"compression": compression}
    if not axes.endswith("S"):
        kwargs["photometric"] = "minisblack"
    if is_ome:
        meta: dict[str, Any] = {"axes": axes}
        for ax, s in zip(axes, scale, strict=True):
            if ax in "ZYX" and s != 1.0:
                meta[f"PhysicalSize{ax}"] = s
        kwargs.update(ome=True, metadata=meta)
    else:
        kwargs.update(metadata={"axes": axes, "scale": list(scale)})
    if data.dtype == bool:
        data = data.astype(np.uint8)
    with atomic_path(path) as tmp:
        # the temp name does not end in .ome.tif, so force the format explicitly
        tifffile.imwrite(tmp, data, **kwargs)
    return path


def labels_dtype(labels: np.ndarray) -> np.dtype:
    """Smallest unsigned integer type able to hold every label id."""
    top = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    axes: str | None = None,
    scale: tuple[float, ...] | None = None,
) -> Path:
    """Write a label image as an unsigned-integer TIFF (atomic).

    The smallest unsigned type that holds every id is used (``uint8`` up to 255 objects).

    Raises
    ------
    ValueError
        If the labels are negative or not whole numbers (complex, text...).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.tif")
    >>> labels = np.zeros((8, 8), np.int64)
    >>> labels[2:5, 2:5] = 7
    >>> _ = write_labels(path, labels)
    >>> read_image(path).data.dtype
    dtype('uint8')
    >>> write_labels(path, -labels)
    Traceback (most recent call last):
    ...
    ValueError: Labels must be >= 0; found -7.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"Labels must be whole numbers; got dtype {labels.dtype}.")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise ValueError("Labels must be whole numbers; got non-integer or NaN values.")
    if labels.dtype.kind in "fi" and labels.size and labels.min() < 0:
        raise ValueError(f"Labels must be >= 0; found {labels.min()}.")
    return write_image(path, labels.astype(labels_dtype(labels)), axes=axes, scale=scale)


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON atomically (used for model metadata and run summaries)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return path
