"""Inputs and outputs of blockwise runs: images by path or array, OME-Zarr or in-memory results."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.core.blocks.arrays import ArrayRef, forget_opened, zarr_ref


@dataclass(frozen=True)
class AxesInfo:
    """Axes, pixel size and units that travel from the input to the output."""

    axes: str | None = None
    scale: tuple[float, ...] | None = None
    units: tuple[Any, ...] | None = None


def as_ref(image) -> tuple[ArrayRef, AxesInfo]:
    """An :class:`ArrayRef` for a path, an ArrayRef, a LazyImage or an array, and its axes.

    Examples
    --------
    >>> ref, info = as_ref(np.zeros((4, 4)))
    >>> ref.shape, info.axes
    ((4, 4), None)
    """
    if isinstance(image, ArrayRef):
        return image, AxesInfo()
    if isinstance(image, str | os.PathLike):
        from cellsight.io.omezarr import open_lazy

        lazy = open_lazy(image)
        return ArrayRef(image=str(image)), _info(lazy)
    if hasattr(image, "levels") and hasattr(image, "axes"):  # a LazyImage
        ref = ArrayRef(image=str(image.path)) if image.path else ArrayRef(array=image.data)
        return ref, _info(image)
    if not hasattr(image, "shape"):
        raise ValueError(f"Cannot read an image from {type(image).__name__}.")
    return ArrayRef(array=image), AxesInfo()


def _info(lazy) -> AxesInfo:
    scale = tuple(float(s) for s in lazy.scale) if lazy.scale is not None else None
    units = tuple(lazy.units) if lazy.units is not None else None
    return AxesInfo(lazy.axes, scale, units)


@dataclass
class Output:
    """Where a blockwise result goes: an OME-Zarr being written, or a numpy array."""

    ref: ArrayRef
    path: Path | None = None
    array: np.ndarray | None = field(default=None, repr=False)

    def finish(self) -> np.ndarray | None:
        """Seal a file output (pyramid, metadata, rename); return an in-memory result."""
        if self.path is None:
            return self.array
        from cellsight.io.omezarr import finalize_output

        self.path = Path(finalize_output(self.path))
        forget_opened()
        return None


def default_axes(ndim: int, spatial: int) -> str:
    """Axis letters for an array without metadata: frames first, then ``ZYX`` / ``YX``.

    Examples
    --------
    >>> default_axes(3, 2), default_axes(3, 3), default_axes(4, 3)
    ('TYX', 'ZYX', 'TZYX')
    """
    space = "ZYX"[3 - spatial:]
    return "TCZYX"[: ndim - spatial].replace("C", "") + space if ndim > spatial else space


def open_output(out, shape, dtype, chunks, info: AxesInfo, kind: str, overwrite: bool,
                spatial: int | None = None) -> Output:
    """Start an output: an OME-Zarr ``OUT.partial`` to fill, or a numpy array (``out=None``)."""
    if out is None:
        array = np.zeros(shape, dtype)
        return Output(ArrayRef(array=array), None, array)
    from cellsight.io.omezarr import create_output

    spatial = spatial or min(len(shape), 3 if len(shape) >= 3 and "Z" in (info.axes or "") else 2)
    axes = _output_axes(info, len(shape), spatial)
    scale = _matching(info.scale, info.axes, axes)
    units = _matching(info.units, info.axes, axes)
    forget_opened()
    array = create_output(out, shape=tuple(shape), dtype=dtype, chunks=tuple(chunks), axes=axes,
                          scale=scale, units=units, kind=kind, overwrite=overwrite)
    return Output(zarr_ref(array), Path(out))


def _output_axes(info: AxesInfo, ndim: int, spatial: int) -> str:
    if info.axes and len(info.axes) == ndim:
        return info.axes
    return default_axes(ndim, spatial)


def _matching(values, source_axes, axes):
    """Per-axis values of the input, re-ordered for the output's axes (None if unknown)."""
    if values is None or not source_axes or len(values) != len(source_axes):
        return None
    lookup = dict(zip(source_axes, values, strict=True))
    return tuple(lookup.get(a, 1.0 if not isinstance(values[0], str) else None) for a in axes)
