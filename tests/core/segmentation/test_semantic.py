import numpy as np
import pytest

from cellsight.config.semantic import SemanticConfig, SemanticPredictConfig
from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.arrays.axes import to_frames
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.semantic import SemanticModel, predict_semantic, train_semantic


def _scene(seed=0, size=64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), bool)
    for _ in range(5):
        cy, cx = rng.integers(8, size - 8, 2)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 49
    image = (100 + 80 * mask + rng.normal(0, 12, mask.shape)).astype(np.uint16)
    return image, mask


def _scribbles(mask):
    """A few strokes per class: eroded centre lines, not the full mask."""
    from scipy import ndimage as ndi

    labels = np.zeros(mask.shape, np.uint8)
    inside = ndi.binary_erosion(mask, iterations=4)
    outside = ndi.binary_erosion(~mask, iterations=6)
    labels[::6][inside[::6]] = 2
    labels[::9][outside[::9]] = 1
    return labels


def _config(**kw):
    training = TrainConfig(
        steps=60, batch_size=4, patch_size=32, val_every=20, learning_rate=5e-3, device="cpu"
    )
    return SemanticConfig(unet=UNetConfig(depth=2, base_channels=8), training=training, **kw)


@pytest.fixture(scope="module")
def scribble_model():
    image, mask = _scene()
    return train_semantic(image, _scribbles(mask), _config())


@pytest.mark.slow
def test_scribbles_give_full_segmentation(scribble_model):
    assert scribble_model.config.n_classes == 2
    assert scribble_model.config.normalization.low_values  # stored with the model
    image, mask = _scene(seed=1, size=80)  # another image, another size
    result = predict_semantic(scribble_model, image)
    assert result.labels.shape == image.shape and set(np.unique(result.labels)) <= {1, 2}
    assert result.probabilities.shape == (2, 80, 80)
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, atol=1e-5)
    accuracy = ((result.labels == 2) == mask).mean()
    assert accuracy > 0.9


@pytest.mark.slow
def test_time_series_frame_by_frame(scribble_model):
    frames = np.stack([_scene(seed=s)[0] for s in (2, 3, 4)])
    events = []
    series = SemanticPredictConfig(timeseries=True)
    result = predict_semantic(scribble_model, frames, series, progress=events.append)
    assert result.labels.shape == frames.shape
    assert result.probabilities.shape == (3, 2, 64, 64)
    single = predict_semantic(scribble_model, frames[1]).labels
    np.testing.assert_array_equal(result.labels[1], single)
    assert events[-1].step == events[-1].total
    with pytest.raises(ValueError, match="2D model on 3D data"):
        predict_semantic(scribble_model, frames)
    same = predict_semantic(
        scribble_model, np.moveaxis(frames, 0, -1), SemanticPredictConfig(axes="YXT")
    )
    np.testing.assert_array_equal(same.labels, result.labels)


@pytest.mark.slow
def test_stop_during_time_series_keeps_finished_frames(scribble_model):
    frames = np.stack([_scene(seed=s)[0] for s in (2, 3, 4)])
    seen = []

    def stop_in_second_frame():
        seen.append(1)
        return len(seen) > 1

    with pytest.raises(Cancelled) as info:
        predict_semantic(
            scribble_model,
            frames,
            SemanticPredictConfig(timeseries=True),
            should_stop=stop_in_second_frame,
        )
    assert info.value.partial.labels.shape == (1, 64, 64)


@pytest.mark.slow
def test_dense_masks_with_zero_background_and_save_load(tmp_path):
    image, mask = _scene()
    model = train_semantic(
        [image], [mask.astype(np.uint8)], _config(zero_is_background=True), out_dir=tmp_path / "m"
    )
    assert model.config.class_offset == 0 and model.config.n_classes == 2
    loaded = SemanticModel.load(tmp_path / "m")
    assert loaded.meta["metrics"]["steps_done"] == 60
    a = predict_semantic(model, image).probabilities
    b = predict_semantic(loaded, image).probabilities
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert set(np.unique(predict_semantic(loaded, image).labels)) <= {0, 1}
    # fine-tune / resume from the folder
    tuned = train_semantic(
        [image],
        [mask.astype(np.uint8)],
        _config(zero_is_background=True),
        init=tmp_path / "m",
        resume=True,
    )
    assert tuned.config.unet == loaded.config.unet


def test_3d_model_and_mismatches():
    rng = np.random.default_rng(0)
    volume = rng.random((8, 16, 16)).astype(np.float32)
    labels = np.zeros(volume.shape, np.uint8)
    labels[:, :4] = 1
    labels[:, -4:] = 2
    config = SemanticConfig(
        unet=UNetConfig(ndim=3, depth=1, base_channels=4),
        training=TrainConfig(
            steps=3, batch_size=2, patch_size=16, patch_size_z=8, device="cpu", val_fraction=0
        ),
    )
    model = train_semantic(volume, labels, config)
    assert predict_semantic(model, volume).labels.shape == volume.shape
    with pytest.raises(ValueError, match="3D but the image has no Z"):
        predict_semantic(model, volume[0], SemanticPredictConfig(axes="YX"))
    with pytest.raises(ValueError, match="expects an image with axes ZYX"):
        predict_semantic(model, volume[0])


def test_bad_labels():
    image, mask = _scene()
    with pytest.raises(ValueError, match="empty"):
        train_semantic(image, np.zeros(image.shape, np.uint8), _config())
    with pytest.raises(ValueError, match="two classes"):
        train_semantic(image, mask.astype(np.uint8), _config())
    with pytest.raises(ValueError, match="fractional values"):  # whole-number floats are fine
        train_semantic(image, mask.astype(np.float32) + 0.5, _config())
    with pytest.raises(ValueError, match="shape"):
        train_semantic(image, _scribbles(mask)[:30], _config())


def test_to_frames_channels():
    frames, has_time = to_frames(np.zeros((2, 10, 12)), 2, in_channels=2)
    assert frames.shape == (1, 2, 10, 12) and not has_time
    with pytest.raises(ValueError, match="2 channel"):
        to_frames(np.zeros((3, 10, 12)), 2, in_channels=2, axes="CYX")


@pytest.mark.slow
def test_scale_trains_small_and_predicts_full_size():
    from cellsight.core.arrays.resize import resize_channels, resize_labels, scaled_shape

    assert scaled_shape((5, 64, 81), 0.5) == (5, 32, 40)
    assert resize_labels(np.array([[1, 2], [3, 4]], np.uint8), (4, 4)).max() == 4
    assert resize_channels(np.ones((2, 8, 8), np.float32), (4, 4)).shape == (2, 4, 4)
    image, mask = _scene(size=96)
    model = train_semantic(image, _scribbles(mask), _config(scale=0.5))
    assert model.config.scale == 0.5
    result = predict_semantic(model, image)
    assert result.labels.shape == (96, 96) and result.probabilities.shape == (2, 96, 96)
    assert ((result.labels == 2) == mask).mean() > 0.85


@pytest.mark.slow
def test_tta_averages_the_eight_views(scribble_model):
    from cellsight.core.curation.uncertainty import dihedral_views

    image, mask = _scene(seed=5, size=48)
    result = predict_semantic(
        scribble_model, image, SemanticPredictConfig(test_time_augmentation=True)
    )
    assert result.probabilities.shape == (2, 48, 48)
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, atol=1e-5)
    by_hand = np.mean(
        [
            inverse(predict_semantic(scribble_model, forward(image).copy()).probabilities)
            for forward, inverse in dihedral_views(8)
        ],
        axis=0,
    )
    np.testing.assert_allclose(result.probabilities, by_hand, atol=1e-4)
    plain = predict_semantic(scribble_model, image).probabilities
    assert np.abs(plain - result.probabilities).max() > 1e-4  # the views do differ
    assert ((result.labels == 2) == mask).mean() > 0.9


def test_shrinking_labels_keeps_outlines_in_place():
    """Majority-vote shrinking: no half-pixel bias, thin scribbles survive, 0 stays 'unlabelled'."""
    from cellsight.core.arrays.resize import resize_channels, resize_labels

    shifts = []
    for offset in range(4):  # every phase of the box against the 4x4 blocks
        mask = np.zeros((64, 64), np.uint8)
        mask[20 + offset : 40 + offset, 16 + offset : 44 + offset] = 1
        small = resize_labels(mask + 1, (16, 16))  # dense: 1 = background, 2 = object
        assert set(np.unique(small)) == {1, 2}
        back = resize_channels((small == 2)[None].astype(np.float32), (64, 64))[0] > 0.5
        rows = np.flatnonzero(back.any(1))
        shifts.append((rows[0] + rows[-1]) / 2 - (29.5 + offset))  # centre moved by
    assert abs(np.mean(shifts)) < 0.26 and max(map(abs, shifts)) <= 1.5
    scribble = np.zeros((64, 64), np.uint8)
    scribble[30, 4:60] = 2  # a 1-pixel stroke
    scribble[4:60, 10] = 1
    small = resize_labels(scribble, (16, 16))
    assert (small == 2).sum() >= 10 and (small == 1).sum() >= 10
    assert (small == 0).mean() > 0.7  # unannotated stays unannotated


def test_shrink_labels_gives_both_forms_at_once():
    from cellsight.core.arrays.resize import label_fractions, resize_labels, shrink_labels

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, (97, 131)).astype(np.uint8)
    labels[labels == 2] = 0  # a class with no pixel
    hard, shares = shrink_labels(labels, (30, 41), [1, 2, 3])
    np.testing.assert_array_equal(hard, resize_labels(labels, (30, 41)))
    np.testing.assert_array_equal(shares, label_fractions(labels, (30, 41), [1, 2, 3]))


@pytest.mark.slow
def test_soft_targets_keep_outlines_between_pixels(monkeypatch):
    """Class shares survive a shrink + enlarge round trip better than majority classes."""
    from cellsight.core.arrays.resize import label_fractions, resize_channels, resize_labels
    from cellsight.core.segmentation import semantic

    yy, xx = np.mgrid[:96, :96]
    mask = ((yy - 47.3) ** 2 + (xx - 45.8) ** 2 < 21.7**2).astype(np.uint8)
    shares = label_fractions(mask + 1, (24, 24), [1, 2])
    assert shares.shape == (2, 24, 24)
    np.testing.assert_allclose(shares.sum(0), 1.0, atol=1e-5)
    hard = resize_labels(mask + 1, (24, 24)) == 2

    def round_trip_iou(small):
        back = resize_channels(small[None].astype(np.float32), (96, 96))[0] > 0.5
        return (back & (mask == 1)).sum() / (back | (mask == 1)).sum()

    assert round_trip_iou(shares[1]) > round_trip_iou(hard) + 0.01
    # train_semantic hands the shares to the trainer when the scale shrinks
    seen = {}
    real = semantic.train_pixel_classifier

    def spy(*args, **kwargs):
        seen["soft"] = kwargs.get("soft_targets")
        return real(*args, **kwargs)

    monkeypatch.setattr(semantic, "train_pixel_classifier", spy)
    image = (mask + np.random.default_rng(0).normal(0, 0.1, mask.shape)).astype(np.float32)
    train_semantic(image, mask, _config(scale=0.5, zero_is_background=True))
    assert seen["soft"] is not None and seen["soft"][0].shape == (2, 48, 48)
    train_semantic(image, mask, _config(scale=0.5, zero_is_background=True, soft_targets=False))
    assert seen["soft"] is None
