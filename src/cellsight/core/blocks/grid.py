"""Cut an array into blocks: each block a core (written) inside a halo (read for context)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product


@dataclass(frozen=True)
class Block:
    """One block of a grid.

    Attributes
    ----------
    index : tuple of int
        Position in the block grid (leading axes included).
    core : tuple of slice
        The region this block owns and writes (global coordinates).
    outer : tuple of slice
        The core grown by the halo, clipped to the array (what the block reads).
    inner : tuple of slice
        Where the core sits inside ``outer`` (to crop a result of ``outer``'s shape).
    """

    index: tuple[int, ...]
    core: tuple[slice, ...]
    outer: tuple[slice, ...]
    inner: tuple[slice, ...]

    @property
    def key(self) -> str:
        """A stable name for the block, e.g. ``"0-3-1"``."""
        return "-".join(map(str, self.index))


def block_grid(
    shape: Sequence[int], block: Sequence[int], halo: Sequence[int]
) -> list[Block]:
    """Blocks covering ``shape``: cores of size ``block`` (smaller at the far edges).

    Parameters
    ----------
    shape : sequence of int
        Array shape. Leading axes that should be processed one index at a time (time,
        channels) get block size 1 and halo 0.
    block : sequence of int
        Core size per axis.
    halo : sequence of int
        Context read on each side of the core per axis (clipped at the array's edges).

    Returns
    -------
    list of Block
        In C order of their grid index.

    Examples
    --------
    >>> blocks = block_grid((10, 7), (4, 4), (1, 1))
    >>> len(blocks), blocks[0].outer, blocks[-1].core
    (6, (slice(0, 5, None), slice(0, 5, None)), (slice(8, 10, None), slice(4, 7, None)))
    >>> blocks[4].inner
    (slice(1, 3, None), slice(0, 4, None))
    """
    if not (len(shape) == len(block) == len(halo)):
        raise ValueError(f"shape {shape}, block {block} and halo {halo} differ in length.")
    if any(b < 1 for b in block) or any(h < 0 for h in halo):
        raise ValueError(f"block sizes must be >= 1 and halos >= 0; got {block}, {halo}.")
    counts = [math.ceil(s / b) for s, b in zip(shape, block, strict=True)]
    return [_block(idx, shape, block, halo) for idx in product(*(range(c) for c in counts))]


def _block(idx, shape, block, halo) -> Block:
    core, outer, inner = [], [], []
    for i, s, b, h in zip(idx, shape, block, halo, strict=True):
        start, stop = i * b, min((i + 1) * b, s)
        lo, hi = max(0, start - h), min(s, stop + h)
        core.append(slice(start, stop))
        outer.append(slice(lo, hi))
        inner.append(slice(start - lo, stop - lo))
    return Block(tuple(idx), tuple(core), tuple(outer), tuple(inner))

