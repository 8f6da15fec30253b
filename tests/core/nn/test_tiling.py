import numpy as np
import pytest
import torch

from cellsight.config import UNetConfig
from cellsight.core.nn.tiling import plan_tiles, predict_tiled, tile_weights
from cellsight.core.nn.unet import UNet
from cellsight.core.progress import Cancelled


def _net(ndim=2, **kw):
    torch.manual_seed(0)
    net = UNet(UNetConfig(ndim=ndim, depth=2, base_channels=8, **kw))
    for m in net.modules():  # non-trivial eval-mode statistics
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _untiled(net, image):
    with torch.inference_mode():
        return net(torch.from_numpy(image[None]))[0].numpy()


@pytest.mark.parametrize("ndim", [2, 3])
def test_single_tile_equals_untiled(ndim):
    net = _net(ndim)
    rng = np.random.default_rng(1)
    image = rng.random((1, *([16] * (ndim - 2)), 32, 48), dtype=np.float32)
    out = predict_tiled(net, image, tile_shape=(64,) * ndim, device="cpu")
    assert out.dtype == np.float32
    assert np.abs(out - _untiled(net, image)).max() < 1e-4


def test_tiled_matches_untiled_without_seams(shared_data):
    from skimage.io import imread

    net = _net()
    raw = imread(shared_data / "em2d_isbi2012" / "images" / "0.png")[:128, :160]
    image = (raw.astype(np.float32) / 255.0)[None]
    ref = _untiled(net, image)
    out = predict_tiled(net, image, tile_shape=(48, 48), overlap=16, batch_size=3)
    assert plan_tiles(image.shape[1:], 4, (48, 48), 16).n_tiles > 9
    # edge effects of the zero-padded convolutions are blended away: close to untiled
    err = np.abs(out - ref)
    assert err.mean() < 0.02 * np.abs(ref).mean()
    # no seam: the error at tile borders is not larger than elsewhere
    grid = plan_tiles(image.shape[1:], 4, (48, 48), 16)
    cols = sorted({s + grid.tile_shape[1] for s in grid.starts[1][:-1]})
    border = err[:, :, [c - 1 for c in cols]].mean()
    assert border < 3 * err.mean() + 1e-6
    # gradients across tile borders look like gradients elsewhere
    dx = np.abs(np.diff(out, axis=2))
    dx_ref = np.abs(np.diff(ref, axis=2))
    assert abs(dx.mean() - dx_ref.mean()) < 0.05 * dx_ref.mean()


def test_padding_for_odd_sizes_and_batches():
    net = _net()
    image = np.random.default_rng(0).random((1, 37, 53), dtype=np.float32)
    events = []
    out = predict_tiled(net, image, tile_shape=(16, 24), batch_size=5, progress=events.append)
    assert out.shape == (2, 37, 53)
    assert np.isfinite(out).all()
    assert events[-1].step == events[-1].total > 1
    small = predict_tiled(net, np.zeros((1, 3, 5), np.float32))
    assert small.shape == (2, 3, 5)


def test_weights_cover_every_pixel():
    grid = plan_tiles((100, 70), 8, (32, 32), 8)
    total = np.zeros(grid.padded_shape, np.float32)
    for i, ys in enumerate(grid.starts[0]):
        for j, xs in enumerate(grid.starts[1]):
            w = tile_weights(grid, (i, j))
            total[ys : ys + w.shape[0], xs : xs + w.shape[1]] += w
    assert total.min() > 0.9  # cosine ramps of neighbours sum to one
    assert grid.padded_shape == (104, 72)
    assert all(s % 8 == 0 for axis in grid.starts for s in axis)


def test_input_checks_and_stop():
    net = _net()
    with pytest.raises(ValueError, match="2D but the image has 3"):
        predict_tiled(net, np.zeros((1, 4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="channel"):
        predict_tiled(net, np.zeros((2, 16, 16), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        predict_tiled(net, np.full((1, 16, 16), np.nan, np.float32))
    with pytest.raises(Cancelled):
        predict_tiled(
            net, np.zeros((1, 64, 64), np.float32), tile_shape=(16, 16), should_stop=lambda: True
        )


def test_model_mode_and_input_are_restored():
    net = _net().train()
    image = np.ones((1, 16, 16), np.float32)
    before = image.copy()
    predict_tiled(net, image)
    assert net.training
    np.testing.assert_array_equal(image, before)
