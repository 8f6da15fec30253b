"""Pixel-wise predictors (semantic classes, denoising) over images of any size, block by block.

Each block reads its core plus a context halo (what the network would see untiled),
predicts, and writes the core of the result; nothing else is needed to join blocks.
"""

import math
import time

import numpy as np

from cellsight.config.blocks import BlockConfig
from cellsight.core.blocks.arrays import ArrayRef
from cellsight.core.blocks.engine import run_blocks
from cellsight.core.blocks.grid import Block, block_grid
from cellsight.core.blocks.instances import BlockwiseResult, _engine
from cellsight.core.blocks.output import as_ref, open_output
from cellsight.core.blocks.rescale import aligned_output, block_logits
from cellsight.core.blocks.stats import global_percentiles
from cellsight.core.progress import ProgressCallback, StopCallback, never_stop, no_progress


def _grid(shape, spatial: int, blocks: BlockConfig, context: int, context_z: int):
    """Block and halo sizes; Z stays whole (a 3D U-Net then sees each stack as untiled)."""
    lead = len(shape) - spatial
    size = [1] * lead + ([shape[lead]] if spatial == 3 else []) + [blocks.block_size] * 2
    halo = [0] * lead + ([0] if spatial == 3 else []) + [context] * 2
    return size, halo


def _dense_task(block: Block, predict, model, image: ArrayRef, out: ArrayRef, lead: int,
                out_lead: int):
    data = image.read(block.outer)
    frame = data.reshape(data.shape[lead:])
    if isinstance(predict, _Semantic | _Denoised):
        crop = predict(model, frame, block, lead)
    else:
        result = predict(model, frame)
        extra = result.ndim - (len(block.core) - lead)  # class axis of probabilities
        crop = result[(slice(None),) * extra + block.inner[lead:]]
    target = (slice(None),) * out_lead + block.core
    classes = crop.shape[: crop.ndim - (len(block.core) - lead)]
    out.write(target, crop.reshape(classes + tuple(s.stop - s.start for s in block.core)))


def run_dense(model, image, predict, spatial: int, dtype, blocks: BlockConfig, out=None,
              classes: int = 0, context: int = 32, context_z: int = 0,
              progress: ProgressCallback = no_progress,
              should_stop: StopCallback = never_stop, engine=None) -> BlockwiseResult:
    """Run ``predict(model, block_array) -> array`` over every block of ``image``.

    ``classes`` > 0 means the result has a leading class axis of that length (written
    first in the output). Returns a :class:`BlockwiseResult` (``labels`` holds the
    in-memory result, whatever it is).
    """
    started = time.monotonic()
    ref, info = as_ref(image)
    shape = ref.shape
    if len(shape) < spatial:
        raise ValueError(f"A {spatial}D model cannot run on an image of shape {shape}.")
    lead = len(shape) - spatial
    size, halo = _grid(shape, spatial, blocks, context, context_z)
    out_shape = ((classes,) if classes else ()) + tuple(shape)
    out_chunks = ((1,) if classes else ()) + tuple(size)
    kind = "labels" if np.issubdtype(np.dtype(dtype), np.integer) else "image"
    output = open_output(out, out_shape, dtype, out_chunks, _with_class_axis(info, classes),
                         kind, blocks.overwrite, spatial)
    grid = block_grid(shape, size, halo)
    with _engine(engine, blocks) as eng:
        if not eng.in_process and ref.in_memory:
            raise ValueError("A cluster needs the image as a file (OME-Zarr or TIFF).")
        run_blocks(eng, _dense_task, grid, predict, eng.share(model), ref, output.ref, lead,
                   1 if classes else 0, message="predicting blocks", progress=progress,
                   should_stop=should_stop)
    result = output.finish()
    return BlockwiseResult(result, output.path, 0, len(grid), time.monotonic() - started)


def _with_class_axis(info, classes: int):
    if not classes or not info.axes:
        return info
    from cellsight.core.blocks.output import AxesInfo

    scale = (1.0, *info.scale) if info.scale else None
    units = (None, *info.units) if info.units else None
    return AxesInfo("C" + info.axes, scale, units)


# --- semantic -------------------------------------------------------------------------


class _Semantic:
    """Per-block semantic prediction on the whole image's grid (labels or probabilities)."""

    def __init__(self, full_yx, probabilities: bool):
        self.full_yx, self.probabilities = tuple(full_yx), probabilities

    def __call__(self, model, frame, block: Block, lead: int):
        from cellsight.core.segmentation.semantic import softmax

        logits = block_logits(model, frame, block.outer[-2:], block.core[-2:],
                              block.inner[lead:], self.full_yx, model.config.scale)
        probs = softmax(logits)
        if self.probabilities:
            return probs
        dtype = np.uint8 if model.config.n_classes + model.config.class_offset <= 255 else (
            np.uint16)
        return (np.argmax(probs, axis=0) + model.config.class_offset).astype(dtype)


def stored_normalisation(model, ref: ArrayRef):
    """A copy of a semantic/instance model whose normalisation is the image-wide one."""
    norm = model.config.normalization
    lo, hi = global_percentiles(ref, norm.low, norm.high)
    config = model.config.model_copy(update={"normalization": norm.model_copy(
        update={"mode": "stored", "low_values": [lo], "high_values": [hi]})})
    return type(model)(config=config, net=model.net, meta=model.meta)


def predict_semantic_blockwise(model, image, blocks: BlockConfig | None = None, out=None,
                               probabilities: bool = False,
                               progress: ProgressCallback = no_progress,
                               should_stop: StopCallback = never_stop,
                               engine=None) -> BlockwiseResult:
    """Semantic classes (or class probabilities) of an image of any size, blockwise.

    ``image`` holds ``{Z}YX`` or frames ``T{Z}YX`` of a single-channel image (an array,
    a dask array or an OME-Zarr / TIFF path); the percentile normalisation is measured
    once on the whole image (a strided sample). With ``out`` (an ``.ome.zarr`` path) the
    labels go straight to disk and memory grows with the block, not with the image.

    Examples
    --------
    >>> import os, tempfile
    >>> from cellsight.config.semantic import SemanticConfig
    >>> from cellsight.config.unet import UNetConfig
    >>> from cellsight.core.nn.unet import UNet
    >>> from cellsight.core.segmentation.semantic import SemanticModel
    >>> net = UNet(UNetConfig(depth=2, base_channels=8, out_channels=2))
    >>> model = SemanticModel(SemanticConfig(n_classes=2, unet=net.config), net)
    >>> image = np.random.default_rng(0).random((200, 160)).astype(np.float32)
    >>> out = os.path.join(tempfile.mkdtemp(), "classes.ome.zarr")
    >>> result = predict_semantic_blockwise(model, image, BlockConfig(block_size=128), out=out)
    >>> result.blocks, result.path.name
    (4, 'classes.ome.zarr')
    """
    blocks = blocks or BlockConfig()
    ref, _ = as_ref(image)
    if model.config.unet.in_channels != 1:
        raise ValueError("Blockwise semantic prediction takes single-channel images.")
    fixed = stored_normalisation(model, ref)
    spatial = model.config.unet.ndim
    context = blocks.context or math.ceil(32 / max(model.config.scale, 1e-3))
    n = model.config.n_classes
    dtype = np.float32 if probabilities else (
        np.uint8 if n + model.config.class_offset <= 255 else np.uint16)
    predict = _Semantic(ref.shape[-2:], probabilities)
    return run_dense(fixed, ref if not isinstance(image, str) else image, predict, spatial,
                     dtype, blocks, out, n if probabilities else 0, context,
                     context if spatial == 3 else 0, progress, should_stop, engine)


# --- denoise --------------------------------------------------------------------------


class _Denoised:
    """Per-block N2V prediction on the whole image's grid (the model's own normalisation)."""

    def __init__(self, full_yx):
        self.full_yx = tuple(full_yx)

    def __call__(self, model, frame, block: Block, lead: int):
        from cellsight.core.denoise.data import denormalise, normalise

        x = normalise(frame[None, None], model.mean, model.std)[0]
        out = aligned_output(model.net, x, block.outer[-2:], block.core[-2:], self.full_yx,
                             self.full_yx)
        out = out[(slice(None), *block.inner[lead:-2], slice(None), slice(None))]
        return denormalise(out[None], model.mean, model.std)[0, 0]


def denoise_blockwise(model, image, blocks: BlockConfig | None = None, out=None,
                      progress: ProgressCallback = no_progress,
                      should_stop: StopCallback = never_stop, engine=None) -> BlockwiseResult:
    """Noise2Void-denoise an image of any size, blockwise (``{Z}YX`` or ``T{Z}YX``).

    The model's own normalisation (stored at training) makes the blocks agree.

    Examples
    --------
    Without ``out`` the result stays in memory (``result.labels`` holds the image):

    >>> from cellsight.config.n2v import N2VConfig
    >>> from cellsight.core.denoise.model import N2VModel, unet_config_for
    >>> from cellsight.core.nn.unet import UNet
    >>> config = N2VConfig(depth=1, base_channels=4)
    >>> model = N2VModel(UNet(unet_config_for(config, ndim=2, channels=1)), config,
    ...                  mean=(0.0,), std=(1.0,))
    >>> noisy = np.random.default_rng(0).normal(size=(2, 150, 150)).astype(np.float32)
    >>> result = denoise_blockwise(model, noisy, BlockConfig(block_size=96))
    >>> result.labels.shape, result.labels.dtype, result.blocks
    ((2, 150, 150), dtype('float32'), 8)
    """
    blocks = blocks or BlockConfig()
    if model.net.config.in_channels != 1:
        raise ValueError("Blockwise denoising takes single-channel images.")
    spatial = model.ndim
    context = blocks.context or 32
    ref, _ = as_ref(image)
    return run_dense(model, image, _Denoised(ref.shape[-2:]), spatial, np.float32, blocks, out,
                     0, context,
                     context if spatial == 3 else 0, progress, should_stop, engine)
