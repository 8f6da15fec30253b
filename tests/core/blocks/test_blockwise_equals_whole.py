"""Blockwise prediction equals the whole-image prediction (semantic, denoise, instances)."""

import numpy as np
import pytest

from cellsight.config.blocks import BlockConfig
from cellsight.config.instances import InstancePredictConfig
from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
from cellsight.config.semantic import SemanticConfig, SemanticPredictConfig
from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.blocks.arrays import ArrayRef
from cellsight.core.blocks.dense import (
    denoise_blockwise,
    predict_semantic_blockwise,
    stored_normalisation,
)
from cellsight.core.blocks.instances import segment_instances_blockwise
from cellsight.core.denoise import denoise, train_n2v
from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.segmentation.instance_model import load_builtin, segment_instances
from cellsight.core.segmentation.semantic import predict_semantic, train_semantic


def _cells(shape=(203, 181), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = rng.normal(10, 2, shape)
    for cy in range(12, shape[0], 26):
        for cx in range(12, shape[1], 26):
            img[(yy - cy - rng.integers(-3, 4)) ** 2 + (xx - cx) ** 2 < 64] += 60
    return img.astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_semantic_probabilities_blockwise_equal_untiled(scale):
    image = _cells()
    labels = np.where(image > 40, 2, 1).astype(np.uint8)
    config = SemanticConfig(
        n_classes=2, scale=scale, unet=UNetConfig(depth=2, base_channels=8),
        training=TrainConfig(steps=4, batch_size=2, patch_size=32, val_fraction=0.0,
                             device="cpu"))
    model = train_semantic([image], [labels], config)
    fixed = stored_normalisation(model, ArrayRef(array=image))  # the image-wide values
    one_tile = SemanticPredictConfig(tile_size=512, device="cpu")
    whole = predict_semantic(fixed, image, one_tile).probabilities
    blocks = predict_semantic_blockwise(model, image, BlockConfig(block_size=64),
                                        probabilities=True)
    assert blocks.blocks == 12
    np.testing.assert_allclose(blocks.labels, whole, atol=1e-4)


@pytest.mark.slow
def test_denoised_blockwise_equal_untiled():
    image = _cells((150, 133))
    model = train_n2v(image, N2VConfig(steps=3, batch_size=2, patch_size=32, device="cpu"))
    whole = denoise(model, image, DenoisePredictConfig(tile_size=512, device="cpu"))
    blocks = denoise_blockwise(model, image, BlockConfig(block_size=64))
    np.testing.assert_allclose(blocks.labels, whole, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("diameter", [16.0, 40.0])  # the model enlarges / shrinks the image
def test_instances_blockwise_equal_whole_image(diameter):
    image = _cells((260, 230))
    model = load_builtin("nuclei")
    config = InstancePredictConfig(diameter=diameter, device="cpu")
    fixed = stored_normalisation(model, ArrayRef(array=image))
    whole = segment_instances(fixed, image, config.model_copy(update={"tile_size": 1024}))
    result = segment_instances_blockwise(model, image, config, BlockConfig(block_size=64))
    m = match_instances(whole, result.labels.astype(np.int32))
    assert result.n_objects == whole.max() > 20
    assert m.tp == whole.max() and min(m.matched_ious) > 0.99
