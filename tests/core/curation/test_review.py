import numpy as np
import pytest

from cellsight.config.instances import InstancePredictConfig
from cellsight.core.curation.review import review_objects
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_model import load_builtin
from cellsight.plugin.samples import load_sample


@pytest.fixture(scope="module")
def data():
    image = load_sample("nuclei_2d")[:64, :80].astype(np.float32)
    truth = load_sample("nuclei_2d_masks")[:64, :80].astype(np.int32)
    return load_builtin("nuclei"), image, truth


def test_objects_of_a_time_series_are_ranked_across_frames(data):
    model, image, truth = data
    movie, labels = np.stack([image, image[::-1]]), np.stack([truth, truth[::-1]])
    events = []
    result = review_objects(model, movie, labels, InstancePredictConfig(mode="t", device="cpu"),
                            n_views=2, progress=events.append)
    n = sum(len(np.unique(f)) - 1 for f in labels)
    assert len(result.items) == n and {it.frame for it in result.items} == {0, 1}
    scores = [it.score for it in result.items]
    assert scores == sorted(scores, reverse=True) and 0 <= min(scores) <= max(scores) <= 1
    assert len(result.frame_scores) == 2 and result.uncertainty.shape == labels.shape
    assert [e.step for e in events] == [1, 2]
    it = result.items[0]
    mask = labels[it.frame] == it.label
    assert np.allclose(it.centroid, np.argwhere(mask).mean(0))


def test_single_image_and_errors(data):
    model, image, truth = data
    result = review_objects(model, image, truth, InstancePredictConfig(device="cpu"), 2)
    assert all(it.frame is None for it in result.items) and len(result.frame_scores) == 1
    # objects where the model is sure there is background are less uncertain than borders
    assert result.uncertainty[truth > 0].mean() < 0.5
    with pytest.raises(ValueError, match="shape"):
        review_objects(model, image, truth[:10])
    with pytest.raises(ValueError, match="integers"):
        review_objects(model, image, truth.astype(float))
    with pytest.raises(Cancelled):
        review_objects(model, image, truth, should_stop=lambda: True)
