"""OME-Zarr (NGFF 0.4 and 0.5) in and out, lazily through dask.

Reading gives a :class:`LazyImage` (dask arrays, nothing loaded). Writing goes through a
sibling ``<path>.partial`` folder that is a valid single-level OME-Zarr from the start
(:func:`create_output`); :func:`finalize_output` adds the pyramid and renames it into
place. NGFF 0.4 is stored as zarr v2 (``.zattrs``), NGFF 0.5 as zarr v3 (``zarr.json``,
metadata under ``"ome"``). The NGFF metadata itself is written by ome-zarr-py.
"""

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.io.atomic import replace_folder
from cellsight.io.tiff import ImageReadError, is_tiff

NGFF_AXES = "TCZYX"
AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
VERSIONS = ("0.4", "0.5")
KINDS = ("image", "labels")
PARTIAL_SUFFIX = ".partial"
MARKER = "cellsight-partial"  # group attribute of an unfinished output
PYRAMID_MIN_SIZE = 256
UNIT_ALIASES = {
    "µm": "micrometer", "\u03bcm": "micrometer", "um": "micrometer", "micron": "micrometer",
    "microns": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter",
    "m": "meter", "s": "second", "sec": "second", "ms": "millisecond", "min": "minute",
    "h": "hour",
}


@dataclass
class LazyImage:
    """A lazily read image: dask arrays plus axes, pixel size and units.

    Attributes
    ----------
    data : dask.array.Array
        The full-resolution array (``levels[0]``).
    axes : str
        Upper-case letters from ``TCZYX`` in that order, e.g. ``"YX"``, ``"CZYX"``.
    scale : tuple of float
        Pixel size per axis (1.0 where unknown).
    units : tuple of (str or None)
        Unit per axis (``"micrometer"``, ``"second"``, ...), None where unknown.
    levels : list of dask.array.Array
        The resolution pyramid, largest first.
    path : pathlib.Path or None
        Where it was read from.
    name : str
        A short name (the file or folder name without suffixes).
    kind : str
        ``"image"`` or ``"labels"`` (an NGFF ``image-label``).
    """

    data: Any
    axes: str
    scale: tuple[float, ...]
    units: tuple[str | None, ...] | None = None
    levels: list = field(default_factory=list)
    path: Path | None = None
    name: str = ""
    kind: str = "image"

    def __post_init__(self) -> None:
        if len(self.axes) != self.data.ndim:
            raise ValueError(f"axes {self.axes!r} do not match the {self.data.ndim}-D data.")
        if self.units is None:
            self.units = (None,) * self.data.ndim
        if not self.levels:
            self.levels = [self.data]


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary sibling folder an output is written to: ``<path>.partial``."""
    return Path(str(Path(path)) + PARTIAL_SUFFIX)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (PARTIAL_SUFFIX, ".zarr", ".ome"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def _ngff_attrs(folder: Path) -> dict | None:
    """The NGFF attributes of a zarr group folder (v2 or v3), or None if it is not one."""
    try:
        if (folder / "zarr.json").is_file():
            meta = json.loads((folder / "zarr.json").read_text())
            if meta.get("node_type") != "group":
                return None
            return meta.get("attributes", {}).get("ome", {})
        if (folder / ".zattrs").is_file():
            return json.loads((folder / ".zattrs").read_text())
    except (OSError, ValueError):
        return None
    return None


def _is_ngff(attrs: dict | None) -> bool:
    return bool(attrs) and any(k in attrs for k in ("multiscales", "labels", "image-label"))


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """Return True for a path named ``*.zarr`` or a folder holding NGFF metadata.

    Examples
    --------
    >>> is_ome_zarr("cells.ome.zarr")
    True
    >>> is_ome_zarr("cells.tif")
    False
    """
    path = Path(path)
    if path.name.lower().endswith(".zarr"):
        return True
    return path.is_dir() and _is_ngff(_ngff_attrs(path))


def label_names(path: str | os.PathLike) -> list[str]:
    """Names of the label images stored under ``<path>/labels`` (empty if none)."""
    attrs = _ngff_attrs(Path(path) / "labels") or {}
    return [n for n in attrs.get("labels", []) if (Path(path) / "labels" / n).is_dir()]


def _check_exists(path: Path) -> None:
    if path.exists():
        if not path.is_dir():
            raise ImageReadError(f"Cannot read {path} as OME-Zarr: it is a file, not a folder.")
        return
    hint = ""
    if partial_path(path).is_dir():
        hint = f" (an unfinished output is at {partial_path(path)})"
    raise ImageReadError(f"Cannot read {path}: no such folder{hint}.")


def _open_group(path: Path):
    """Open ``path`` as a zarr group and return ``(group, ngff_attrs)``."""
    import zarr

    _check_exists(path)
    attrs = _ngff_attrs(path)
    if not _is_ngff(attrs):
        raise ImageReadError(
            f"Cannot read {path} as OME-Zarr: no NGFF metadata (zarr.json / .zattrs with "
            "'multiscales') found."
        )
    try:
        group = zarr.open_group(str(path), mode="r")
    except (ValueError, OSError) as exc:
        raise ImageReadError(f"Cannot read {path} as OME-Zarr: {exc}") from exc
    return group, attrs


def _axes_of(multiscale: dict, path: Path) -> tuple[str, tuple[str | None, ...]]:
    axes, units = "", []
    for ax in multiscale.get("axes") or []:
        name = ax if isinstance(ax, str) else ax.get("name", "")
        if name.upper() not in NGFF_AXES or len(name) != 1:
            raise ImageReadError(f"Cannot read {path}: axis {name!r} is not one of t, c, z, y, x.")
        axes += name.upper()
        units.append(None if isinstance(ax, str) else ax.get("unit"))
    return axes, tuple(units)


def _scale_of(transforms: list | None, ndim: int) -> np.ndarray:
    scale = np.ones(ndim)
    for t in transforms or []:
        if t.get("type") == "scale":
            scale = scale * np.asarray(t["scale"], dtype=float)
    return scale


def read_ome_zarr(path: str | os.PathLike, level: int | None = None) -> LazyImage:
    """Open an OME-Zarr image (NGFF 0.4 or 0.5) lazily, with axes, pixel size and units.

    Parameters
    ----------
    path : str or PathLike
        An image folder (``cells.ome.zarr``) or a label image inside one
        (``cells.ome.zarr/labels/nuclei``).
    level : int, optional
        Resolution level to use as ``data`` (0 = full resolution, the default);
        ``levels`` then starts at that level and ``scale`` is that level's.

    Returns
    -------
    LazyImage
        Dask arrays; nothing is loaded until computed.

    Raises
    ------
    ImageReadError
        If the path is missing or not an OME-Zarr image.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.ome.zarr"
    >>> _ = write_ome_zarr(out, np.zeros((4, 6), np.uint8), axes="YX", scale=(0.5, 0.5))
    >>> img = read_ome_zarr(out)
    >>> img.axes, img.scale, img.data.shape
    ('YX', (0.5, 0.5), (4, 6))
    """
    import dask.array as da

    path = Path(path)
    group, attrs = _open_group(path)
    if not attrs.get("multiscales"):
        names = attrs.get("labels") or ["NAME"]
        raise ImageReadError(
            f"Cannot read {path}: it holds label images, not an image; open e.g. "
            f"{path / names[0]}."
        )
    multiscale = attrs["multiscales"][0]
    axes, units = _axes_of(multiscale, path)
    datasets = multiscale["datasets"]
    try:
        levels = [da.from_zarr(group[d["path"]]) for d in datasets]
    except KeyError as exc:
        raise ImageReadError(f"Cannot read {path}: resolution level {exc} is missing.") from exc
    if not axes:  # NGFF < 0.3: always 5-D
        axes, units = NGFF_AXES[-levels[0].ndim :], (None,) * levels[0].ndim
    level = 0 if level is None else int(level)
    if not 0 <= level < len(levels):
        raise ValueError(f"{path} has {len(levels)} resolution levels; level {level} is invalid.")
    base = _scale_of(multiscale.get("coordinateTransformations"), len(axes))
    scale = base * _scale_of(datasets[level].get("coordinateTransformations"), len(axes))
    return LazyImage(
        data=levels[level],
        axes=axes,
        scale=tuple(float(s) for s in scale),
        units=units,
        levels=levels[level:],
        path=path,
        name=multiscale.get("name") if multiscale.get("name") not in (None, "", "/")
        else _stem(path),
        kind="labels" if "image-label" in attrs else "image",
    )


def open_lazy(path: str | os.PathLike) -> LazyImage:
    """Open any image cellsight reads without loading it: OME-Zarr or TIFF / OME-TIFF.

    TIFFs are read through tifffile's zarr interface, with axes and pixel size taken
    as :func:`cellsight.io.read_image` takes them, reordered to NGFF order (``TCZYX``;
    RGB samples become ``C``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from cellsight.io.tiff import write_image
    >>> tif = write_image(pathlib.Path(tempfile.mkdtemp()) / "a.tif", np.ones((3, 4, 5)),
    ...                   axes="ZYX")
    >>> img = open_lazy(tif)
    >>> type(img.data).__name__, img.axes
    ('Array', 'ZYX')
    """
    path = Path(path)
    if is_tiff(path):
        from cellsight.io.lazy import read_tiff_lazy

        return read_tiff_lazy(path)
    if is_ome_zarr(path) or path.is_dir():
        return read_ome_zarr(path)
    if not path.exists():
        raise ImageReadError(f"Cannot read {path}: no such file.")
    raise ImageReadError(f"Cannot read {path}: not a TIFF or OME-Zarr image.")


def normalise_unit(unit: str | None) -> str | None:
    """Map common unit spellings (``µm``, ``micron``, ``s``) to NGFF names."""
    if not unit:
        return None
    return UNIT_ALIASES.get(str(unit).strip(), str(unit).strip())


def to_ngff_order(data, axes: str, scale=None, units=None):
    """Reorder an array to NGFF axis order (``TCZYX``), turning RGB ``S`` into ``C``.

    Size-1 axes with other letters are dropped.

    Returns
    -------
    tuple
        ``(data, axes, scale, units)`` reordered.

    Examples
    --------
    >>> import numpy as np
    >>> data, axes, scale, _ = to_ngff_order(np.zeros((3, 2, 8, 8)), "ZCYX", (2, 1, .5, .5))
    >>> data.shape, axes, scale
    ((2, 3, 8, 8), 'CZYX', (1.0, 2.0, 0.5, 0.5))
    """
    axes = axes.upper()
    scale = tuple(float(s) for s in scale) if scale is not None else (1.0,) * len(axes)
    units = tuple(units) if units is not None else (None,) * len(axes)
    if "S" in axes:
        if "C" in axes:
            raise ValueError(f"Axes {axes!r} have both C and S (RGB samples); cannot store both.")
        axes = axes.replace("S", "C")
    keep = [i for i, a in enumerate(axes) if a in NGFF_AXES]
    for i, a in enumerate(axes):
        if a not in NGFF_AXES and data.shape[i] != 1:
            raise ValueError(f"Axis {a!r} (size {data.shape[i]}) of {axes!r} is not one of TCZYX.")
    if len(keep) < len(axes):
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes, scale, units = ("".join(axes[i] for i in keep), tuple(scale[i] for i in keep),
                              tuple(units[i] for i in keep))
    order = sorted(range(len(axes)), key=lambda i: NGFF_AXES.index(axes[i]))
    return (data.transpose(order), "".join(axes[i] for i in order),
            tuple(scale[i] for i in order), tuple(units[i] for i in order))


def default_chunks(axes: str, shape: tuple[int, ...], size: int = 256) -> tuple[int, ...]:
    """Chunk shape for writing: ``size`` in Y/X, ``min(size, Z)`` in Z, 1 in T and C.

    Examples
    --------
    >>> default_chunks("TCZYX", (5, 2, 40, 1000, 100), 256)
    (1, 1, 40, 256, 100)
    """
    if size < 1:
        raise ValueError(f"Chunk size must be at least 1; got {size}.")
    return tuple(1 if a in "TC" else max(1, min(size, n)) for a, n in zip(axes, shape, strict=True))


def _exists_message(path: Path) -> str:
    return f"{path} already exists; use --overwrite (overwrite=True) to replace it."


def _check_axes(axes: str, ndim: int) -> str:
    axes = str(axes).upper()
    if len(axes) != ndim:
        raise ValueError(f"axes {axes!r} has {len(axes)} letters but the data has {ndim} dims.")
    if "Y" not in axes or "X" not in axes or any(a not in NGFF_AXES for a in axes):
        raise ValueError(f"axes {axes!r} must be letters from TCZYX and include Y and X.")
    if sorted(axes, key=NGFF_AXES.index) != list(axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} must be distinct and in NGFF order (T, C, Z, Y, X).")
    return axes


def _format(version: str):
    from ome_zarr.format import FormatV04, FormatV05

    if str(version) not in VERSIONS:
        raise ValueError(f"OME-Zarr version must be one of {VERSIONS}; got {version!r}.")
    return FormatV04() if str(version) == "0.4" else FormatV05()


def _create_level(group, key: str, shape, dtype, chunks, axes: str):
    kwargs: dict[str, Any] = {}
    if group.metadata.zarr_format == 3:
        kwargs["dimension_names"] = [a.lower() for a in axes]
    encoding = {"name": "v2" if group.metadata.zarr_format == 2 else "default", "separator": "/"}
    return group.create_array(
        name=key, shape=tuple(shape), dtype=dtype, fill_value=0, overwrite=True,
        chunks=tuple(min(c, max(n, 1)) for c, n in zip(chunks, shape, strict=True)),
        chunk_key_encoding=encoding, **kwargs,
    )


def _write_metadata(group, fmt, axes: str, scale, units, n_levels: int, name: str,
                    kind: str) -> None:
    from ome_zarr.writer import add_metadata, write_multiscales_metadata

    datasets = []
    for i in range(n_levels):
        factor = np.array([2.0**i if a in "YX" else 1.0 for a in axes])
        level_scale = np.asarray(scale) * factor
        transforms: list[dict] = [{"type": "scale", "scale": level_scale.tolist()}]
        if i:
            shift = (level_scale - np.asarray(scale)) / 2
            transforms.append({"type": "translation", "translation": shift.tolist()})
        datasets.append({"path": str(i), "coordinateTransformations": transforms})
    axes_meta = [
        {"name": a.lower(), "type": AXIS_TYPES[a], **({"unit": u} if u else {})}
        for a, u in zip(axes, units, strict=True)
    ]
    write_multiscales_metadata(group, datasets, fmt=fmt, axes=axes_meta, name=name)
    if kind == "labels":
        label_meta = {"version": fmt.version} if fmt.version == "0.4" else {}
        add_metadata(group, {"image-label": label_meta}, fmt=fmt)


def create_output(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype,
    chunks: tuple[int, ...],
    axes: str,
    scale: tuple[float, ...] | None = None,
    units: tuple[str | None, ...] | None = None,
    kind: str = "image",
    overwrite: bool = False,
    version: str = "0.4",
):
    """Start an OME-Zarr output: ``<path>.partial``, ready for a blockwise writer.

    The partial folder is a valid single-level OME-Zarr from the start (metadata is
    written first), so a cancelled run leaves a readable partial output. Call
    :func:`finalize_output` when every block is written. An earlier ``.partial`` of the
    same path is discarded.

    Parameters
    ----------
    path : str or PathLike
        The final output folder, e.g. ``nuclei.ome.zarr``.
    shape, dtype, chunks : tuple, dtype, tuple
        Level-0 array shape, data type and chunk shape (see :func:`default_chunks`).
    axes : str
        Letters from ``TCZYX`` in that order, including Y and X.
    scale, units : tuple, optional
        Pixel size and unit per axis (1.0 / None where unknown).
    kind : {"image", "labels"}
        Labels get ``image-label`` metadata and a nearest-neighbour pyramid.
    overwrite : bool
        Replace an existing ``path`` at :func:`finalize_output`.
    version : {"0.4", "0.5"}
        NGFF version: 0.4 is zarr v2, 0.5 is zarr v3.

    Returns
    -------
    zarr.Array
        The level-0 array (fill value 0) to write into.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "seg.ome.zarr"
    >>> arr = create_output(out, (64, 64), "uint16", (32, 32), "YX", kind="labels")
    >>> arr[:32, :32] = 1
    >>> finalize_output(out).name
    'seg.ome.zarr'
    """
    import zarr

    path = Path(path)
    shape = tuple(int(n) for n in shape)
    axes = _check_axes(axes, len(shape))
    scale = tuple(float(s) for s in scale) if scale is not None else (1.0,) * len(axes)
    units = tuple(normalise_unit(u) for u in units) if units is not None else (None,) * len(axes)
    if len(scale) != len(axes) or len(units) != len(axes):
        raise ValueError(f"scale and units need one value per axis of {axes!r}.")
    if kind not in KINDS:
        raise ValueError(f"kind must be 'image' or 'labels'; got {kind!r}.")
    dtype = np.dtype(dtype)
    if kind == "labels" and dtype.kind not in "iu":
        raise ValueError(f"Labels need an integer data type; got {dtype}.")
    if len(chunks) != len(shape):
        raise ValueError(f"chunks {tuple(chunks)} need one size per axis of {axes!r}.")
    fmt = _format(version)
    if path.exists() and not overwrite:
        raise FileExistsError(_exists_message(path))
    partial = partial_path(path)
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    group = zarr.open_group(str(partial), mode="w", zarr_format=fmt.zarr_format)
    array = _create_level(group, "0", shape, dtype, tuple(int(c) for c in chunks), axes)
    _write_metadata(group, fmt, axes, scale, units, 1, _stem(path), kind)
    group.attrs[MARKER] = {"overwrite": bool(overwrite), "kind": kind, "version": fmt.version}
    return array


def _downsample(x, axes: str, kind: str):
    """Halve Y and X: strided for labels, 2x2 mean (same dtype) for images."""
    import dask.array as da

    yx = [axes.index("Y"), axes.index("X")]
    if kind == "labels":
        index = tuple(slice(None, None, 2) if i in yx else slice(None) for i in range(x.ndim))
        return x[index]
    pad = [(0, x.shape[i] % 2 if i in yx else 0) for i in range(x.ndim)]
    if any(p for _, p in pad):
        x = da.pad(x, pad, mode="edge")
    x = x.rechunk({i: 2 * max(1, max(x.chunks[i]) // 2) for i in yx})
    mean = da.coarsen(np.mean, x, dict.fromkeys(yx, 2))
    if x.dtype.kind in "biu":
        mean = da.round(mean)
    return mean.astype(x.dtype)


def _build_pyramid(group, axes: str, kind: str, levels: int | None) -> int:
    import dask.array as da

    base = group["0"]
    prev, n = base, 1
    while True:
        size = [prev.shape[axes.index(a)] for a in "YX"]
        if levels is not None and n >= levels:
            break
        if min(size) < 2 or (levels is None and max(size) <= PYRAMID_MIN_SIZE):
            break
        small = _downsample(da.from_zarr(prev), axes, kind)
        array = _create_level(group, str(n), small.shape, base.dtype, base.chunks, axes)
        da.store(small.rechunk(array.chunks), array, lock=False)
        prev, n = array, n + 1
    for key in list(group.array_keys()):
        if key.isdigit() and int(key) >= n:
            del group[key]
    return n


def _partial_info(partial: Path) -> dict | None:
    """The flags :func:`create_output` left in an unfinished output, or None."""
    try:
        if (partial / "zarr.json").is_file():
            return json.loads((partial / "zarr.json").read_text())["attributes"][MARKER]
        return json.loads((partial / ".zattrs").read_text())[MARKER]
    except (OSError, ValueError, KeyError):
        return None


def finalize_output(path: str | os.PathLike, levels: int | None = None) -> Path:
    """Build the pyramid of ``<path>.partial`` and move it to ``path``.

    Parameters
    ----------
    path : str or PathLike
        The output given to :func:`create_output`.
    levels : int, optional
        Number of resolution levels. By default, halve Y/X until both are at most
        256 px; with ``levels`` exactly that many (fewer only if Y or X would drop
        below 1 px).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        If there is no unfinished output for ``path``.
    FileExistsError
        If ``path`` appeared meanwhile and ``create_output`` had ``overwrite=False``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "img.ome.zarr"
    >>> arr = create_output(out, (600, 600), "uint8", (256, 256), "YX")
    >>> len(read_ome_zarr(finalize_output(out)).levels)
    3
    """
    import zarr

    path = Path(path)
    partial = partial_path(path)
    info = _partial_info(partial)
    if info is None:
        raise FileNotFoundError(f"No unfinished output {partial} to finalize; call create_output.")
    if path.exists() and not info.get("overwrite"):
        raise FileExistsError(_exists_message(path))
    if levels is not None and levels < 1:
        raise ValueError(f"levels must be at least 1; got {levels}.")
    img = read_ome_zarr(partial)
    group = zarr.open_group(str(partial), mode="r+")
    n = _build_pyramid(group, img.axes, info["kind"], levels)
    _write_metadata(group, _format(info["version"]), img.axes, img.scale, img.units, n,
                    _stem(path), info["kind"])
    del group.attrs[MARKER]
    replace_folder(partial, path)
    return path


def write_ome_zarr(
    path: str | os.PathLike,
    data,
    axes: str,
    scale: tuple[float, ...] | None = None,
    units: tuple[str | None, ...] | None = None,
    kind: str = "image",
    chunks: tuple[int, ...] | None = None,
    overwrite: bool = False,
    version: str = "0.4",
    levels: int | None = None,
) -> Path:
    """Write a whole numpy or dask array as a multiscale OME-Zarr (atomic).

    Parameters
    ----------
    path : str or PathLike
        Output folder, e.g. ``cells.ome.zarr``.
    data : numpy.ndarray or dask.array.Array
        Written blockwise; a dask array is never loaded whole.
    axes : str
        Letters from ``TCZYX`` in that order (see :func:`to_ngff_order`).
    scale, units : tuple, optional
        Pixel size and unit per axis.
    kind : {"image", "labels"}
        Labels need integers; they get a nearest-neighbour pyramid.
    chunks : tuple of int, optional
        Chunk shape (default :func:`default_chunks`).
    overwrite : bool
        Replace an existing ``path``; otherwise raise FileExistsError.
    version : {"0.4", "0.5"}
        NGFF version.
    levels : int, optional
        Number of resolution levels (see :func:`finalize_output`).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "vol.ome.zarr"
    >>> write_ome_zarr(out, np.zeros((2, 8, 8), np.uint16), "ZYX", scale=(2.0, 0.3, 0.3),
    ...                version="0.5").name
    'vol.ome.zarr'
    """
    import dask.array as da

    if not isinstance(data, da.Array):
        data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    axes = _check_axes(axes, data.ndim)
    chunks = tuple(chunks) if chunks is not None else default_chunks(axes, data.shape)
    array = create_output(path, data.shape, data.dtype, chunks, axes, scale, units, kind,
                          overwrite, version)
    da.store(da.asarray(data).rechunk(array.chunks), array, lock=False)
    return finalize_output(path, levels)


def add_labels(
    image_path: str | os.PathLike, name: str, labels, overwrite: bool = False
) -> Path:
    """Store a label image in an OME-Zarr image's ``labels/<name>`` group.

    The labels get the image's axes (without C when they have no channel axis), pixel
    size, units, chunks and number of resolution levels (nearest-neighbour pyramid),
    ``image-label`` metadata, and their name in the ``labels`` group's list.

    Parameters
    ----------
    image_path : str or PathLike
        An existing OME-Zarr image.
    name : str
        Name of the label image (a folder name, e.g. ``"nuclei"``).
    labels : numpy.ndarray or dask.array.Array
        Integer labels, the image's shape without its C axis (or with a C axis of size 1).
    overwrite : bool
        Replace an existing label image of that name.

    Returns
    -------
    pathlib.Path
        The label image folder.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> img = pathlib.Path(tempfile.mkdtemp()) / "img.ome.zarr"
    >>> _ = write_ome_zarr(img, np.zeros((8, 8), np.uint8), "YX")
    >>> add_labels(img, "nuclei", np.ones((8, 8), np.uint16)).relative_to(img).as_posix()
    'labels/nuclei'
    """
    import dask.array as da
    import zarr
    from ome_zarr.writer import add_metadata, write_label_metadata

    image_path = Path(image_path)
    image = read_ome_zarr(image_path)
    if not isinstance(labels, da.Array):
        labels = np.asarray(labels)
    if image.kind == "labels":
        raise ValueError(f"{image_path} is a label image; add labels to its image instead.")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"Invalid label name {name!r}: use a plain folder name.")
    keep = list(range(len(image.axes)))
    expected = list(image.data.shape)
    if "C" in image.axes:
        c = image.axes.index("C")
        if labels.ndim != image.data.ndim:
            keep.remove(c)
        else:  # labels may keep a C axis of size 1
            expected[c] = 1
    if tuple(labels.shape) != tuple(expected[i] for i in keep):
        raise ValueError(
            f"Labels of shape {tuple(labels.shape)} do not match the image {image_path} "
            f"(shape {image.data.shape}, axes {image.axes})."
        )
    group = zarr.open_group(str(image_path), mode="r")
    version = "0.4" if group.metadata.zarr_format == 2 else "0.5"
    fmt = _format(version)
    labels_group = zarr.open_group(str(image_path / "labels"), mode="a",
                                   zarr_format=fmt.zarr_format)
    out = write_ome_zarr(
        image_path / "labels" / name, labels,
        axes="".join(image.axes[i] for i in keep),
        scale=tuple(image.scale[i] for i in keep),
        units=tuple(image.units[i] for i in keep),
        kind="labels",
        chunks=tuple(min(image.data.chunksize[i], labels.shape[j]) for j, i in enumerate(keep)),
        overwrite=overwrite, version=version, levels=len(image.levels),
    )
    names = [n for n in label_names(image_path) if n != name]
    add_metadata(labels_group, {"labels": names}, fmt=fmt)
    if version == "0.5":
        add_metadata(labels_group, {"version": version}, fmt=fmt)
    write_label_metadata(labels_group, name, fmt=fmt, source={"image": "../../"})
    return out
