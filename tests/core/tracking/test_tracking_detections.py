import numpy as np
import pytest

from cellsight.core.tracking.detections import detect


def test_detect_2d_measures_each_object(movie):
    image = np.zeros(movie.shape, np.float32)
    image[movie == 9] = 5.0
    det = detect(movie, image)
    assert len(det) == 1 + 1 + 2 + 2 + 4  # moving cell(s) + static cell per frame
    row = det.node_of(0, 1)
    assert det.area[row] == 100
    np.testing.assert_allclose(det.centroid[row], [24.5, 24.5])
    assert det.bbox[row].tolist() == [20, 20, 30, 30]
    static = det.node_of(3, 9)
    assert det.mean_intensity[static] == 5.0 and det.mean_intensity[row] == 0.0
    assert det.node_of(0, 2) is None


def test_detect_3d_time_series():
    lab = np.zeros((2, 6, 20, 20), np.uint8)
    lab[0, 1:3, 2:6, 2:6] = 3
    lab[1, 2:5, 10:12, 10:14] = 7
    det = detect(lab)
    assert det.ndim == 3 and len(det) == 2
    assert det.area.tolist() == [32, 24]
    np.testing.assert_allclose(det.centroid[1], [3.0, 10.5, 11.5])
    assert det.bbox[0].tolist() == [1, 2, 2, 3, 6, 6]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((8, 8), np.uint8), "time series"),
        (np.zeros((2, 8, 8), np.float32), "integers"),
        (np.zeros((2, 8, 8), np.uint8), "empty"),
    ],
)
def test_detect_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        detect(bad)


def test_image_shape_must_match(movie):
    with pytest.raises(ValueError, match="does not match"):
        detect(movie, np.zeros((4, 10, 10)))
