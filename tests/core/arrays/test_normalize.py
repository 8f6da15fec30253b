import numpy as np
import pytest

from cellsight.core.arrays.normalize import (
    measure_normalization,
    normalize_channels,
    percentile_values,
)
from cellsight.core.segmentation.classical import percentile_normalize


def test_per_channel_values_are_returned_and_reusable():
    rng = np.random.default_rng(0)
    image = np.stack([rng.normal(10, 2, (32, 32)), rng.normal(1000, 50, (32, 32))])
    out, values = normalize_channels(image, 1, 99)
    assert out.dtype == np.float32 and out.shape == image.shape
    for c in range(2):
        assert np.percentile(out[c], 1) == pytest.approx(0, abs=1e-4)
        assert np.percentile(out[c], 99) == pytest.approx(1, abs=1e-4)
    again, used = normalize_channels(image * 2, values=values)
    assert used == values
    assert again[1].mean() > 1.5  # the stored values are applied, not re-measured


def test_classical_normalize_uses_the_same_code():
    image = np.arange(1000, dtype=np.uint16).reshape(20, 50)
    lo, hi = percentile_values(image, 1, 99.8)
    np.testing.assert_allclose(percentile_normalize(image), (image - lo) / (hi - lo), atol=1e-6)


def test_measure_over_images():
    norm = measure_normalization(
        [np.full((1, 8, 8), v, np.float32) + np.eye(8) for v in (0, 10, 20)], 0, 100
    )
    assert norm.low_values == (10.0,)
    assert norm.high_values == (11.0,)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        normalize_channels(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="low < high"):
        percentile_values(np.ones(4), 50, 10)
    with pytest.raises(ValueError, match="channel"):
        normalize_channels(np.ones((2, 4, 4)), values=[(0, 1)])
