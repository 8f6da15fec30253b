"""Read and write blocks of arrays that live in files (any worker) or in memory (threads).

A block task gets an :class:`ArrayRef`, not the data: a worker process or a cluster node
opens the file itself (once per process, cached), reads only its block and writes its
result straight into a zarr array on disk, so memory grows with the block, not the image.
"""

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArrayRef:
    """Where a block reads from or writes to.

    Exactly one of:

    - ``image``: path of an image cellsight reads (OME-Zarr, TIFF), read lazily;
    - ``zarr``: path of a plain zarr array (an output level, an intermediate);
    - ``array``: an in-memory array (numpy, dask, zarr); only for in-process engines.

    Examples
    --------
    >>> ref = ArrayRef(array=np.arange(12).reshape(3, 4))
    >>> ref.read((slice(1, 3), slice(0, 2))).tolist()
    [[4, 5], [8, 9]]
    """

    image: str | None = None
    zarr: str | None = None
    array: Any = None

    def __post_init__(self):
        if sum(x is not None for x in (self.image, self.zarr, self.array)) != 1:
            raise ValueError("ArrayRef needs exactly one of image, zarr or array.")

    @property
    def in_memory(self) -> bool:
        """True when the data live in this process only."""
        return self.array is not None

    def _target(self):
        if self.array is not None:
            return self.array
        if self.zarr is not None:
            return _open_zarr(self.zarr)
        return _open_image(self.image)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the array."""
        return tuple(self._target().shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the array."""
        return np.dtype(self._target().dtype)

    def read(self, slices: tuple[slice, ...]) -> np.ndarray:
        """The values in ``slices`` as a numpy array."""
        part = self._target()[slices]
        if hasattr(part, "compute"):  # dask: compute here, in this task
            part = part.compute(scheduler="synchronous")
        return np.asarray(part)

    def write(self, slices: tuple[slice, ...], values: np.ndarray) -> None:
        """Store ``values`` at ``slices`` (zarr arrays and numpy arrays only)."""
        target = self._target()
        target[slices] = values


def zarr_ref(array) -> ArrayRef:
    """An :class:`ArrayRef` to an on-disk zarr array (for worker processes)."""
    store = getattr(array, "store", None)
    root = getattr(store, "root", None)
    if root is None:
        return ArrayRef(array=array)
    path = str(root) if not array.path else f"{root}/{array.path}"
    return ArrayRef(zarr=path)


@functools.lru_cache(maxsize=16)
def _open_zarr(path: str):
    import zarr

    return zarr.open_array(path, mode="r+")


@functools.lru_cache(maxsize=16)
def _open_image(path: str):
    from cellsight.io.omezarr import open_lazy

    return open_lazy(path).data


def forget_opened() -> None:
    """Drop the cached open arrays (after a file was replaced)."""
    _open_zarr.cache_clear()
    _open_image.cache_clear()


def create_work_array(path, shape, chunks, dtype, fill_value=0):
    """A zarr array on disk for intermediate results (replaced if present).

    Compressed with LZ4 at level 1 (Blosc, byte shuffle), not zarr's default zstd: every
    block writes its maps once and reads them back with a halo, and zstd made that I/O
    about 2x slower (measured on a 4-block probability map: write 1.01 s vs 0.46 s, read
    0.40 s vs 0.32 s) for about the same size on disk (11 MB vs 13 MB; uncompressed 33 MB).
    """
    import zarr
    from zarr.codecs import BloscCodec

    return zarr.create_array(
        str(path), shape=tuple(shape), chunks=tuple(chunks), dtype=dtype,
        fill_value=fill_value, overwrite=True,
        compressors=BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),
    )
