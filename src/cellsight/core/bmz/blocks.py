"""bioimage.io packages from other tools over images of any size, block by block.

A package's own preprocessing often depends on the sample (``scale_range`` with
per-sample percentiles, ``zero_mean_unit_variance`` per sample): run block by block, each
block would be normalised on its own and the blocks would disagree. Here the statistics
the package asks for are measured once on a strided sample of the whole image (as
cellsight does for its own models, :func:`~cellsight.core.blocks.stats.sample_pixels`)
and every block is pre- and postprocessed with them. Outputs are mapped as in
:func:`~cellsight.core.bmz.run.predict_package`: class probabilities -> labels,
foreground / boundary -> seam-free instances (the same two label passes as cellsight's
own instance models), an image -> an image.
"""

import time

import numpy as np

from cellsight.config.blocks import BlockConfig
from cellsight.config.instances import InstancePostConfig
from cellsight.core.blocks.arrays import ArrayRef
from cellsight.core.blocks.dense import _grid, run_dense
from cellsight.core.blocks.engine import run_blocks
from cellsight.core.blocks.grid import Block, block_grid
from cellsight.core.blocks.instances import (
    BlockwiseResult,
    _engine,
    _size,
    _WorkArrays,
    label_maps_blockwise,
)
from cellsight.core.blocks.output import as_ref, open_output
from cellsight.core.blocks.stats import sample_pixels
from cellsight.core.bmz.run import (
    PackageModel,
    _DescribedOrder,
    _dims,
    _from_tensor,
    _halos,
    _instance_maps,
    _output_described,
    _sample,
    _tiling,
    _to_described,
    augmented,
)
from cellsight.core.nn.tiling import predict_tiled
from cellsight.core.progress import ProgressCallback, StopCallback, never_stop, no_progress

#: context (pixels) each block reads around itself when the package declares no halo
DEFAULT_CONTEXT = 64


def _processing(model: PackageModel):
    from bioimageio.core.proc_ops import UpdateStats
    from bioimageio.core.proc_setup import setup_pre_and_postprocessing

    setup = setup_pre_and_postprocessing(model.package.descr, dataset_for_initial_statistics=[])
    stats = [op for op in setup.pre if isinstance(op, UpdateStats)]
    pre = [op for op in setup.pre if not isinstance(op, UpdateStats)]
    return stats, pre, setup.post


def image_statistics(model: PackageModel, ref: ArrayRef) -> dict:
    """The measures the package's processing needs, from a strided sample of the image.

    The sample's pixels are laid out as one row (``1 x N``) of the input's layout, so
    measures over the spatial axes (percentiles, mean, standard deviation) are those of
    the whole image.
    """
    stats, _, _ = _processing(model)
    if not stats:
        return {}
    pixels = sample_pixels(ref).astype(np.float32, copy=False).ravel()
    if not np.all(np.isfinite(pixels)):
        raise ValueError("The image contains NaN or infinite values.")
    shape = [1] * len(model.spatial)
    shape[-1] = pixels.size
    frame = pixels.reshape((1, *shape))  # (C=1, 1, ..., N)
    sample = _sample(str(model.input.id), _to_described(model, frame), _dims(model.input.axes))
    for op in stats:
        op(sample)
    return dict(sample.stat)


class _PackageBlock:
    """Predict one block through the package with the image-wide statistics."""

    def __init__(self, stat: dict, tile_size: int, device: str, tta: bool = False):
        self.stat, self.tile_size, self.device, self.tta = stat, tile_size, device, tta
        self._ops = None  # (pre, post) operators, set up on first use in each process

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ops": None}  # operators are rebuilt where it runs

    def __call__(self, model: PackageModel, frame: np.ndarray) -> np.ndarray:
        if self._ops is None:
            self._ops = _processing(model)[1:]
        pre, post = self._ops
        in_id, out_id = str(model.input.id), str(model.output.id)
        pad_in, crop_out, mode = _halos(model)
        x = np.pad(np.asarray(frame, np.float32)[None], [(0, 0), *pad_in], mode=mode)
        sample = _sample(in_id, _to_described(model, x), _dims(model.input.axes))
        sample.stat = dict(self.stat)
        for op in pre:
            op(sample)
        x = _from_tensor(sample.members[in_id], model.spatial)
        adapter = _DescribedOrder(model)
        halo = max([getattr(a, "halo", 0) for a in model.output.axes] + [0])
        tiles, overlap = _tiling(model, self.tile_size, halo, adapter.divisor)
        y = augmented(lambda v: predict_tiled(adapter, v, tile_shape=tiles, overlap=overlap,
                                              device=self.device, amp=False), x, self.tta)
        out = _sample(out_id, _output_described(model, y), _dims(model.output.axes))
        out.stat = sample.stat
        for op in post:
            op(out)
        y = _from_tensor(out.members[out_id], model.spatial)
        return y[(slice(None), *(slice(lo, y.shape[i + 1] - hi)
                                 for i, (lo, hi) in enumerate(crop_out)))]


class _Labels(_PackageBlock):
    def __call__(self, model, frame):
        return (np.argmax(super().__call__(model, frame), axis=0) + 1).astype(np.uint16)


class _Image(_PackageBlock):
    def __call__(self, model, frame):
        return super().__call__(model, frame)[0].astype(np.float32)


def _maps_task(block: Block, predict: _PackageBlock, model, image: ArrayRef, maps: ArrayRef,
               lead: int):
    data = image.read(block.outer)
    output = predict(model, data.reshape(data.shape[lead:]))
    fg, bd = _instance_maps(output[None])
    inner = block.inner[lead:]
    for channel, values in enumerate((fg[0][inner], bd[0][inner])):
        maps.write((slice(channel, channel + 1), *block.core),
                   values.reshape((1, *_size(block.core))))


def _context(model: PackageModel, blocks: BlockConfig) -> int:
    if blocks.context:
        return blocks.context
    halo = max([getattr(a, "halo", 0) for a in model.output.axes] + [0])
    return max(DEFAULT_CONTEXT, 2 * halo)


def predict_package_blockwise(
    model: PackageModel,
    image,
    *,
    blocks: BlockConfig | None = None,
    out=None,
    post: InstancePostConfig | None = None,
    tile_size: int = 0,
    device: str = "auto",
    tta: bool = False,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
    engine=None,
) -> BlockwiseResult:
    """Run a single-channel package over an image of any size, block by block.

    Parameters
    ----------
    model : PackageModel
        From :func:`~cellsight.core.bmz.run.load_package`; one input channel.
    image : numpy.ndarray, dask array, ArrayRef or path
        ``{Z}YX`` or frames ``(T, {Z}YX)``; a path (OME-Zarr, TIFF) is read lazily.
    blocks : BlockConfig, optional
        Block size, context (default: twice the package's halo, at least 64 px), engine,
        overwrite.
    out : path, optional
        OME-Zarr to write (``.partial`` while running); None keeps the result in memory.
    post : InstancePostConfig, optional
        Watershed parameters for a foreground / boundary output.
    tile_size, device, tta : optional
        As for :func:`~cellsight.core.bmz.run.predict_package`.

    Returns
    -------
    BlockwiseResult
        ``labels`` holds the labels (semantic: class 1 = the package's first channel;
        instance: objects numbered 1..n across blocks) or the output image.

    Examples
    --------
    The built-in model as a package, over four 128 x 128 blocks:

    >>> import os, tempfile
    >>> from cellsight.core.bmz.export import export_package
    >>> from cellsight.core.bmz.run import load_package
    >>> path = export_package("nuclei", os.path.join(tempfile.mkdtemp(), "nuclei.zip"),
    ...                       test_image=np.random.rand(1, 96, 96))
    >>> yy, xx = np.mgrid[:128, :128]
    >>> discs = (((yy - 40) ** 2 + (xx - 40) ** 2 < 11 ** 2)
    ...          | ((yy - 88) ** 2 + (xx - 90) ** 2 < 11 ** 2)).astype("float32")
    >>> result = predict_package_blockwise(load_package(path, prefer_cellsight=False),
    ...                                    np.tile(discs, (2, 2)),
    ...                                    blocks=BlockConfig(block_size=128))
    >>> result.labels.shape, result.n_objects, result.blocks
    ((256, 256), 8, 4)
    """
    if model.channels != 1:
        raise ValueError(f"Blockwise runs take single-channel packages; this one takes "
                         f"{model.channels} channels (run it on one image in memory).")
    if model.kind == "raw":
        raise ValueError("The package's output is not one cellsight can interpret "
                         "(labels, instances or an image): run it on one image in memory.")
    blocks = blocks or BlockConfig()
    started = time.monotonic()
    ref, info = as_ref(image)
    spatial = len(model.spatial)
    if len(ref.shape) < spatial or len(ref.shape) > spatial + 1:
        raise ValueError(f"The package takes {spatial}D images ({model.spatial.upper()}), or a "
                         f"time series of them; got shape {ref.shape}.")
    lead = len(ref.shape) - spatial
    stat = image_statistics(model, ref)
    context = _context(model, blocks)
    if model.kind == "semantic":
        return run_dense(model, ref, _Labels(stat, tile_size, device, tta), spatial, np.uint16,
                         blocks, out=out, context=context, progress=progress,
                         should_stop=should_stop, engine=engine)
    if model.kind == "image":
        return run_dense(model, ref, _Image(stat, tile_size, device, tta), spatial, np.float32,
                         blocks, out=out, context=context, progress=progress,
                         should_stop=should_stop, engine=engine)
    post = post or InstancePostConfig()
    shape = ref.shape
    size, ctx = _grid(shape, spatial, blocks, context, 0)
    label = blocks.label_halo or 64
    lab = [0] * lead + ([label] if spatial == 3 else []) + [label] * 2
    output = open_output(out, shape, np.uint32, size, info, "labels", blocks.overwrite, spatial)
    grid = block_grid(shape, size, ctx)
    with _engine(engine, blocks) as eng:
        if not eng.in_process and ref.in_memory:
            raise ValueError("A cluster needs the image as a file (OME-Zarr or TIFF).")
        work = _WorkArrays(output, shape, size, in_memory=out is None)
        try:
            total = 3 * len(grid)
            run_blocks(eng, _maps_task, grid, _PackageBlock(stat, tile_size, device, tta),
                       eng.share(model), ref, work.maps, lead, message="predicting blocks",
                       progress=progress, should_stop=should_stop, progress_total=total)
            n = label_maps_blockwise(eng, work.maps, work.ids, output.ref, post, size, lab,
                                     lead, progress, should_stop, offset=len(grid),
                                     total=total)
        finally:
            work.remove()
    labels = output.finish()
    return BlockwiseResult(labels, output.path, n, len(grid), time.monotonic() - started)
