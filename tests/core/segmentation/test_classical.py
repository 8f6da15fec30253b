import numpy as np
import pytest

from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.segmentation.classical import otsu_watershed, percentile_normalize
from cellsight.plugin.samples import load_sample


def test_normalize_rejects_nan():
    img = np.ones((4, 4))
    img[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        percentile_normalize(img)


def test_otsu_watershed_finds_real_nuclei():
    image = load_sample("nuclei_2d")
    labels = otsu_watershed(image)
    truth = load_sample("nuclei_2d_masks")
    assert labels.shape == image.shape
    assert match_instances(truth, labels).ap > 0.4
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


def test_otsu_watershed_rejects_time_axis():
    with pytest.raises(ValueError, match="2D or 3D"):
        otsu_watershed(np.zeros((2, 3, 4, 5)))
