import numpy as np
import pytest
import torch

from cellsight.core.denoise.masking import (
    blind_spot_batch,
    grid_spacing,
    masked_mse,
    stratified_coords,
)


def _ramp(shape):
    """A batch whose every value is unique (its own flat index)."""
    n = int(np.prod(shape))
    return torch.arange(n, dtype=torch.float32).reshape(shape)


def _positions(mask):
    return [tuple(int(v) for v in p) for p in torch.nonzero(mask)]


def test_fraction_and_only_masked_pixels_change():
    batch = torch.randn(4, 2, 64, 64)
    gen = torch.Generator().manual_seed(0)
    inputs, mask = blind_spot_batch(batch, 0.015, "n2v", 2, gen)
    share = mask.float().mean().item()
    assert 0.01 < share < 0.02
    assert torch.equal(inputs[~mask], batch[~mask])
    assert (inputs[mask] != batch[mask]).float().mean() > 0.99
    # the input batch is not modified
    assert not torch.equal(inputs, batch)


def test_channels_get_independent_positions():
    _, mask = blind_spot_batch(torch.randn(1, 2, 64, 64), 0.02)
    assert not torch.equal(mask[0, 0], mask[0, 1])


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 1, 6, 8, 8)])
def test_n2v_replacement_is_a_neighbour_never_the_centre(shape):
    batch = _ramp(shape)
    spatial = shape[2:]
    for seed in range(20):
        inputs, mask = blind_spot_batch(batch, 0.1, "n2v", 2, torch.Generator().manual_seed(seed))
        for pos in _positions(mask):
            source = np.unravel_index(int(inputs[pos]), shape)
            assert source[:2] == pos[:2]  # same patch and channel
            offset = np.subtract(source[2:], pos[2:])
            assert np.abs(offset).max() <= 2 and np.abs(offset).max() > 0
            assert all(0 <= s < n for s, n in zip(source[2:], spatial, strict=True))


def test_n2v2_replacement_is_the_neighbourhood_median():
    batch = torch.randn(2, 1, 16, 16)
    inputs, mask = blind_spot_batch(batch, 0.05, "n2v2", 1, torch.Generator().manual_seed(3))
    img = batch.numpy()
    checked = 0
    for n, c, y, x in _positions(mask):
        if 0 < y < 15 and 0 < x < 15:  # interior: plain 3x3 neighbourhood
            hood = img[n, c, y - 1 : y + 2, x - 1 : x + 2].ravel()
            values = np.delete(hood, 4)
            expected = np.sort(values)[(len(values) - 1) // 2]  # torch's lower median
            assert inputs[n, c, y, x].item() == pytest.approx(expected)
            checked += 1
    assert checked > 5


def test_stratified_coords_cover_the_grid():
    planes, coords = stratified_coords(3, (40, 40), 1 / 64)
    assert grid_spacing(1 / 64, 2) == 8
    assert coords.shape[0] == 3 * 25
    for p in range(3):
        cells = {tuple((c // 8).tolist()) for c in coords[planes == p]}
        assert len(cells) == 25  # exactly one position per grid cell


def test_masked_mse_ignores_unmasked_pixels():
    target = torch.randn(2, 1, 8, 8)
    mask = torch.zeros_like(target, dtype=torch.bool)
    mask[0, 0, 2, 3] = True
    pred = target + 5.0
    pred[mask] = target[mask] + 1.0
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no pixel"):
        masked_mse(pred, target, torch.zeros_like(mask))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="variant"):
        blind_spot_batch(torch.randn(1, 1, 16, 16), 0.02, "n3v")
    with pytest.raises(ValueError, match="N, C"):
        blind_spot_batch(torch.randn(16, 16), 0.02)
    with pytest.raises(ValueError, match="fraction"):
        grid_spacing(0.0, 2)
