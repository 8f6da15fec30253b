import numpy as np
import pytest

from cellsight.core.denoise.data import (
    PatchSampler,
    channel_stats,
    denormalise,
    fit_patch,
    make_layout,
    normalise,
)


@pytest.mark.parametrize(
    "axes, shape, canonical",
    [
        ("YX", (20, 30), (1, 1, 20, 30)),
        ("TYX", (4, 20, 30), (4, 1, 20, 30)),
        ("ZYX", (5, 20, 30), (1, 1, 5, 20, 30)),
        ("YXC", (20, 30, 3), (1, 3, 20, 30)),
        ("CTYX", (2, 4, 20, 30), (4, 2, 20, 30)),
        ("TZCYX", (3, 5, 2, 20, 30), (3, 2, 5, 20, 30)),
    ],
)
def test_layout_round_trip(axes, shape, canonical):
    image = np.random.default_rng(0).normal(size=shape)
    layout = make_layout(image, axes)
    data = layout.to_canonical(image)
    assert data.shape == canonical
    np.testing.assert_array_equal(layout.from_canonical(data), image)


def test_crop_to_original_places_the_crop():
    image = np.arange(2 * 3 * 10 * 12).reshape(2, 3, 10, 12)  # C, T, Y, X
    layout = make_layout(image, "CTYX")
    data = layout.to_canonical(image)
    crop = data[2, :, 4:8, 5:9]
    placed, origin = layout.crop_to_original(crop, 2, (4, 5))
    assert origin == (0, 2, 4, 5)
    np.testing.assert_array_equal(placed, image[:, 2:3, 4:8, 5:9])


def test_layout_errors():
    with pytest.raises(ValueError, match="ambiguous"):
        make_layout(np.zeros((3, 8, 8)), None)
    with pytest.raises(ValueError, match="2 letters"):
        make_layout(np.zeros((3, 8, 8)), "YX")
    with pytest.raises(ValueError, match="at most once"):
        make_layout(np.zeros((3, 8, 8)), "YYX")
    with pytest.raises(ValueError, match="Y and X"):
        make_layout(np.zeros((3, 8)), "TX")


def test_normalisation_round_trip_and_constant_channel():
    data = np.random.default_rng(1).normal(50, 7, size=(2, 2, 16, 16))
    mean, std = channel_stats(data)
    norm = normalise(data, mean, std)
    assert abs(norm.mean()) < 1e-5 and abs(norm.std() - 1) < 1e-3
    np.testing.assert_allclose(denormalise(norm, mean, std), data, rtol=1e-5)
    data[:, 1] = 3.0
    with pytest.raises(ValueError, match="constant"):
        channel_stats(data)


def test_fit_patch():
    assert fit_patch((100, 50), (64, 64), 4) == (64, 48)
    assert fit_patch((7, 300), (16, 64), 4) == (4, 64)
    with pytest.raises(ValueError, match="at least 8"):
        fit_patch((6, 64), (16, 64), 8)


def test_training_patches_never_touch_the_validation_stripe():
    data = np.zeros((1, 1, 64, 200), np.float32)
    data[..., 180:] = 1.0  # the last 10% of X (20 px) -> stripe of max(32, 20) = 32 px
    sampler = PatchSampler(data, (32, 32), 0.1, np.random.default_rng(0))
    assert sampler.val is not None and sampler.val.shape[1:] == (1, 32, 32)
    assert sampler.limits[-1] == 168
    for _ in range(20):
        batch = sampler.train_batch(8, augment=True)
        assert batch.shape == (8, 1, 32, 32)
        assert batch.max() == 0.0


def test_time_series_holds_out_whole_frames():
    data = np.stack([np.full((1, 32, 32), t, np.float32) for t in range(20)])
    sampler = PatchSampler(data, (16, 16), 0.1, np.random.default_rng(0))
    held_out = set(np.unique(sampler.val).tolist())
    assert len(held_out) == 2
    seen = {float(v) for _ in range(30) for v in sampler.train_batch(4, False)[:, 0, 0, 0]}
    assert not seen & held_out


def test_too_small_for_validation_disables_it():
    sampler = PatchSampler(np.zeros((1, 1, 32, 32), np.float32), (32, 32), 0.1,
                           np.random.default_rng(0))
    assert sampler.val is None and sampler.val_kind == "none"
    assert sampler.train_batch(2, True).shape == (2, 1, 32, 32)
