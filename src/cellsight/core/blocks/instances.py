"""Seam-free instance segmentation of images of any size, block by block.

Three passes over the blocks, each a task per block on the :class:`Engine`:

1. **maps**: each block reads its core plus a network *context* halo, predicts the
   foreground and boundary maps with the image-wide normalisation and nucleus
   diameter, and writes the maps of its core to an on-disk intermediate.
2. **objects**: each block reads the stored maps of its core plus a *label halo*
   (three nucleus diameters, at least 32 pixels), runs the watershed there, and names every
   object by an *anchor*: the global position of the first (in C order) of its seed
   pixels. Two blocks that both see a whole object compute the same watershed on the
   same stored maps and so give it the same anchor: an object crossing a block face is
   written by both blocks, under one name, with no merging step. Each block writes
   only its core, so no two tasks write the same pixels.
3. **numbering**: the anchors of all blocks, sorted, become ids 1..N (consecutive over
   the whole output, frames included), written to the output.

Only objects larger than the label halo can be cut at a block face.
"""

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsight.config.blocks import BlockConfig
from cellsight.config.instances import InstancePostConfig, InstancePredictConfig
from cellsight.core.blocks.arrays import ArrayRef, create_work_array
from cellsight.core.blocks.engine import Engine, malloc_trim, run_blocks
from cellsight.core.blocks.grid import Block, block_grid
from cellsight.core.blocks.output import Output, as_ref, open_output
from cellsight.core.blocks.rescale import block_logits
from cellsight.core.blocks.stats import central_crop, global_percentiles
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    estimate_diameter,
    rescale_factor,
)
from cellsight.core.segmentation.watershed import watershed_instances


@dataclass
class BlockwiseResult:
    """What a blockwise run produced.

    Attributes
    ----------
    labels : numpy.ndarray or None
        The result when it was kept in memory (no output path).
    path : pathlib.Path or None
        The OME-Zarr written (when an output path was given).
    n_objects : int
        Objects found (instances) or 0.
    blocks : int
        Blocks per pass.
    seconds : float
        Wall time of the whole run.
    diameter : float
        Nucleus diameter used (measured once or given).
    """

    labels: np.ndarray | None
    path: Path | None
    n_objects: int
    blocks: int
    seconds: float
    diameter: float = 0.0


def _spatial_ndim(model: InstanceModel, config: InstancePredictConfig, ndim: int) -> int:
    if config.mode == "2d":
        return 2
    if config.mode == "3d":
        return 3
    return ndim - 1  # "t": frames of 2D or 3D


def _check_shape(shape, spatial: int, config: InstancePredictConfig) -> None:
    if len(shape) not in (spatial, spatial + 1) or (config.mode == "t") != (len(shape) > spatial):
        raise ValueError(
            f"Mode '{config.mode}' does not fit an image of shape {tuple(shape)}."
        )


def prepare_model(model: InstanceModel, ref: ArrayRef, config, spatial: int):
    """The model with the image-wide normalisation stored in it, and the diameter to use."""
    norm = model.config.normalization
    lo, hi = global_percentiles(ref, norm.low, norm.high)
    fixed = model.config.model_copy(
        update={"normalization": norm.model_copy(
            update={"mode": "stored", "low_values": [lo], "high_values": [hi]})}
    )
    fixed_model = InstanceModel(config=fixed, net=model.net, meta=model.meta)
    diameter = config.diameter
    if config.estimate_diameter or diameter <= 0:
        crop = central_crop(ref, spatial)
        sub = config.model_copy(update={"mode": f"{spatial}d"})
        diameter = estimate_diameter(fixed_model, crop, sub) or model.config.diameter
    return fixed_model, float(diameter)


#: context each block reads for the network, in the model's pixels, per pooling level of
#: the U-Net (its receptive field doubles with each level): 40 px for depth 3, 80 px for
#: depth 4 keep block maps within the whole-image tiler's blending noise
CONTEXT_PER_LEVEL = 5


def context_model_pixels(model) -> int:
    """Network context (model pixels) a block reads around itself for ``model``."""
    return CONTEXT_PER_LEVEL * 2 ** int(model.config.unet.depth)


def _halos(model, config, blocks: BlockConfig, shape, spatial, diameter):
    factor = rescale_factor(model, diameter)
    context = blocks.context or math.ceil(context_model_pixels(model) / max(factor, 1e-3))
    divisor = int(getattr(model.net, "divisor", 1))
    context = math.ceil(context / divisor) * divisor  # outer starts stay on the pooling grid
    label = blocks.label_halo or max(32, math.ceil(3 * diameter))
    lead = len(shape) - spatial
    # a 3D U-Net sees whole stacks (Z never split): its Z pooling grid is the whole image's
    z_size = shape[lead] if model.config.unet.ndim == 3 else blocks.block_size_z
    size = [1] * lead + ([z_size] if spatial == 3 else []) + [blocks.block_size] * 2
    ctx = [0] * lead + ([0] if spatial == 3 else []) + [context] * 2
    lab = [0] * lead + ([label] if spatial == 3 else []) + [label] * 2
    return size, ctx, lab


def _maps_task(block: Block, model, image: ArrayRef, maps: ArrayRef, config, lead: int,
               full_yx):
    data = image.read(block.outer)
    frame = data.reshape(data.shape[lead:])
    inner, core = block.inner[lead:], block.core
    factor = rescale_factor(model, config.diameter)
    fg, bd = _rescaled_maps(model, frame, config, block.outer[-2:], core[-2:], inner,
                            full_yx, factor)
    maps.write((slice(0, 1), *core), fg.reshape((1, *_size(core))))
    maps.write((slice(1, 2), *core), bd.reshape((1, *_size(core))))


def _rescaled_maps(model, frame, config, outer_yx, core_yx, inner, full_yx, factor):
    """Maps of a block on the whole image's model grid (see :mod:`.rescale`)."""
    from cellsight.core.segmentation.semantic import softmax
    from cellsight.core.segmentation.watershed import maps_from_probabilities

    logits = block_logits(model, frame, outer_yx, core_yx, inner, full_yx, factor,
                          config.test_time_augmentation, config.device)
    return maps_from_probabilities(softmax(logits))


def _size(slices) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in slices)


def _anchors(labels: np.ndarray, seeds: np.ndarray, outer, shape) -> np.ndarray:
    """Per label (index = id) the global C-order index of its first seed pixel."""
    n = int(labels.max())
    grids = np.meshgrid(*(np.arange(s.start, s.stop) for s in outer), indexing="ij", sparse=True)
    flat = np.ravel_multi_index(tuple(np.broadcast_arrays(*grids)), shape)
    unset = np.iinfo(np.int64).max
    out = np.full(n + 1, unset, np.int64)
    mask = seeds & (labels > 0)
    np.minimum.at(out, labels[mask], flat[mask])
    missing = out == unset
    missing[0] = False
    if missing.any():  # objects without seed pixels (mask regions no seed reached)
        mask = missing[labels]
        np.minimum.at(out, labels[mask], flat[mask])
    out[0] = -1
    return out


def _objects_task(block: Block, maps: ArrayRef, ids: ArrayRef, post, shape, lead: int):
    fg = maps.read((slice(0, 1), *block.outer))[0]
    bd = maps.read((slice(1, 2), *block.outer))[0]
    frame_fg = fg.reshape(fg.shape[lead:])
    frame_bd = bd.reshape(bd.shape[lead:])
    labels = watershed_instances(frame_fg, frame_bd, post)
    seeds = (frame_fg - frame_bd) > post.seed_threshold
    anchors = _anchors(labels, seeds, block.outer[lead:], shape[lead:])
    frame_offset = _frame_offset(block, shape, lead)
    named = np.where(labels > 0, anchors[labels] + 1 + frame_offset, 0)
    core = named[block.inner[lead:]].reshape(_size(block.core))
    ids.write(block.core, core)
    return np.unique(core[core > 0])


def _frame_offset(block: Block, shape, lead: int) -> int:
    if not lead:
        return 0
    frame = np.ravel_multi_index(tuple(s.start for s in block.core[:lead]), shape[:lead])
    return int(frame) * int(np.prod(shape[lead:]))


def _number_task(block: Block, ids: ArrayRef, out: ArrayRef, anchors: np.ndarray):
    named = ids.read(block.core)
    numbered = np.zeros(named.shape, np.uint32)
    fg = named > 0
    numbered[fg] = (np.searchsorted(anchors, named[fg]) + 1).astype(np.uint32)
    out.write(block.core, numbered)


def segment_instances_blockwise(
    model: InstanceModel,
    image,
    config: InstancePredictConfig | None = None,
    blocks: BlockConfig | None = None,
    out=None,
    post: InstancePostConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
    engine: Engine | None = None,
) -> BlockwiseResult:
    """Segment an image of any size into objects, block by block, seam-free.

    Parameters
    ----------
    model : InstanceModel
    image : numpy.ndarray, dask array, ArrayRef or path
        ``(Y, X)``, ``(Z, Y, X)``, or frames ``(T, ...)`` (mode ``t``); a path (OME-Zarr,
        TIFF) is read lazily, block by block.
    config : InstancePredictConfig, optional
        Mode, diameter (0 or ``estimate_diameter``: measured once on the image's centre),
        tile size, device, test-time augmentation.
    blocks : BlockConfig, optional
        Block size, halos, engine, retries, overwrite.
    out : path, optional
        OME-Zarr labels to write (``.partial`` while running, renamed at the end). None:
        keep the labels in memory (in-process engine only).
    post : InstancePostConfig, optional
        Watershed parameters (default: the model's).
    progress, should_stop : callable
        Progress counts blocks over the three passes. A stop cancels the blocks not
        started and raises :class:`Cancelled`; a file output is left readable as
        ``OUT.partial``.
    engine : Engine, optional
        A started engine to reuse (else one is started from ``blocks``).

    Returns
    -------
    BlockwiseResult

    Examples
    --------
    Four 128 x 128 blocks, each with two discs about 30 px wide, one set of ids:

    >>> from cellsight.core.segmentation.instance_model import load_builtin
    >>> yy, xx = np.mgrid[:128, :128]
    >>> discs = (((yy - 40) ** 2 + (xx - 40) ** 2 < 15 ** 2)
    ...          | ((yy - 88) ** 2 + (xx - 90) ** 2 < 15 ** 2)).astype("float32")
    >>> result = segment_instances_blockwise(
    ...     load_builtin("nuclei"), np.tile(discs, (2, 2)), InstancePredictConfig(diameter=30),
    ...     BlockConfig(block_size=128))
    >>> result.labels.shape, result.n_objects, result.blocks
    ((256, 256), 8, 4)
    """
    config = config or InstancePredictConfig()
    blocks = blocks or BlockConfig()
    post = post or model.config.postprocessing
    started = time.monotonic()
    ref, axes_info = as_ref(image)
    shape = ref.shape
    spatial = _spatial_ndim(model, config, len(shape))
    _check_shape(shape, spatial, config)
    lead = len(shape) - spatial
    fixed, diameter = prepare_model(model, ref, config, spatial)
    malloc_trim()  # the whole-image sampling's buffers go back before the blocks start
    run_config = config.model_copy(
        update={"mode": f"{spatial}d", "diameter": diameter, "estimate_diameter": False})
    size, ctx, lab = _halos(fixed, run_config, blocks, shape, spatial, diameter)
    output = open_output(out, shape, np.uint32, size, axes_info, "labels", blocks.overwrite,
                         spatial)
    with _engine(engine, blocks) as eng:
        if not eng.in_process and ref.in_memory:
            raise ValueError("A cluster needs the image as a file (OME-Zarr or TIFF).")
        work = _WorkArrays(output, shape, size, in_memory=out is None)
        try:
            n = _run_passes(eng, fixed, ref, work, output, run_config, post, (size, ctx, lab),
                            lead, progress, should_stop)
        finally:
            work.remove()
    labels = output.finish()
    return BlockwiseResult(labels, output.path, n, len(block_grid(shape, size, ctx)),
                           time.monotonic() - started, diameter)


def _engine(engine: Engine | None, blocks: BlockConfig):
    if engine is not None:
        return _Reuse(engine)
    return Engine(workers=blocks.workers or None, scheduler=blocks.scheduler or None,
                  retries=blocks.retries)


class _Reuse:
    def __init__(self, engine):
        self.engine = engine

    def __enter__(self):
        return self.engine

    def __exit__(self, *exc):
        return None


class _WorkArrays:
    """The two intermediates (maps, anchor ids): numpy in memory, or zarr beside the output."""

    def __init__(self, output: Output, shape, size, in_memory: bool):
        self.folder = None
        if in_memory:
            self.maps = ArrayRef(array=np.zeros((2, *shape), np.float32))
            self.ids = ArrayRef(array=np.zeros(shape, np.int64))
            return
        self.folder = Path(f"{output.path}.work")
        maps = create_work_array(self.folder / "maps", (2, *shape), (1, *size), "float32")
        ids = create_work_array(self.folder / "ids", shape, size, "int64")
        self.maps = ArrayRef(zarr=str(Path(maps.store.root) / maps.path))
        self.ids = ArrayRef(zarr=str(Path(ids.store.root) / ids.path))

    def remove(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _run_passes(eng, model, ref, work, output, config, post, sizes, lead, progress,
                should_stop) -> int:
    size, ctx, lab = sizes
    net_blocks = block_grid(ref.shape, size, ctx)
    total = 3 * len(net_blocks)
    full_yx = ref.shape[-2:]
    run_blocks(eng, _maps_task, net_blocks, eng.share(model), ref, work.maps, config, lead,
               full_yx, message="predicting blocks", progress=progress, should_stop=should_stop,
               progress_total=total)
    return label_maps_blockwise(eng, work.maps, work.ids, output.ref, post, size, lab, lead,
                                progress, should_stop, offset=len(net_blocks), total=total)


def label_maps_blockwise(eng: Engine, maps: ArrayRef, ids: ArrayRef, out: ArrayRef,
                         post: InstancePostConfig, size, halo, lead: int = 0,
                         progress: ProgressCallback = no_progress,
                         should_stop: StopCallback = never_stop, offset: int = 0,
                         total: int | None = None) -> int:
    """Passes 2 and 3: watershed ``maps`` (``(2, ...)``: foreground, boundary) blockwise.

    Writes consecutive ids to ``out`` (via the int64 anchor ids in ``ids``) and returns
    the number of objects. ``size`` and ``halo`` are per axis of the image (``lead``
    leading frame axes get block 1 and halo 0).
    """
    shape = maps.shape[1:]
    blocks = block_grid(shape, size, halo)
    total = total if total is not None else 2 * len(blocks)
    common = {"progress": progress, "should_stop": should_stop, "progress_total": total}
    found = run_blocks(eng, _objects_task, blocks, maps, ids, post, shape, lead,
                       message="finding objects", progress_offset=offset, **common)
    anchors = np.unique(np.concatenate([np.asarray(v, np.int64) for v in found.values()]
                                       or [np.zeros(0, np.int64)]))
    run_blocks(eng, _number_task, blocks, ids, out, eng.share(anchors),
               message="numbering objects", progress_offset=offset + len(blocks), **common)
    return len(anchors)


__all__ = ["BlockwiseResult", "Cancelled", "label_maps_blockwise", "segment_instances_blockwise"]
