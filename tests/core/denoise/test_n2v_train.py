import numpy as np
import pytest

from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
from cellsight.core.denoise import N2VModel, denoise, load_model, train_n2v
from cellsight.core.evaluation.metrics import psnr
from cellsight.core.progress import Cancelled
from cellsight.plugin.samples import load_sample

TINY = {"steps": 4, "batch_size": 2, "patch_size": 16, "patch_size_z": 8, "base_channels": 4}


def _noisy(shape, seed=0):
    return np.random.default_rng(seed).normal(100, 10, size=shape).astype(np.float32)


@pytest.mark.slow
def test_denoises_a_real_widefield_crop():
    noisy = load_sample("w2s_noisy")[128:256, 128:256]
    clean = load_sample("w2s_clean")[128:256, 128:256]
    config = N2VConfig(steps=60, batch_size=8, patch_size=32, base_channels=8, device="cpu")
    model = train_n2v(noisy, config)
    out = denoise(model, noisy, DenoisePredictConfig(device="cpu"))
    assert out.dtype == np.float32 and out.shape == noisy.shape
    gain = psnr(clean, out, 255) - psnr(clean, noisy, 255)
    assert gain > 1.5, gain


@pytest.mark.slow
def test_events_checkpoints_and_preview(tmp_path):
    events, previews = [], []
    config = N2VConfig(**{**TINY, "steps": 6, "checkpoint_every": 3})
    image = _noisy((48, 64))
    before = image.copy()
    model = train_n2v(image, config, checkpoint_dir=tmp_path, preview=previews.append,
                      preview_every=2, preview_size=24, progress=events.append)
    np.testing.assert_array_equal(image, before)
    assert {p.name for p in tmp_path.iterdir()} == {"step_000003", "step_000006", "last"}
    assert [e.step for e in events][-1] == 6 and all("loss" in e.values for e in events)
    assert "val_loss" in events[-1].values and np.isfinite(events[-1].values["val_loss"])
    assert [p.step for p in previews] == [2, 4, 6]
    assert previews[-1].data.shape == (24, 24) and previews[-1].origin == (12, 20)
    reloaded = load_model(tmp_path / "last")
    np.testing.assert_allclose(denoise(reloaded, image), denoise(model, image), atol=1e-4)
    assert reloaded.meta["steps_done"] == 6 and reloaded.config == config


@pytest.mark.slow
def test_stop_keeps_the_last_checkpoint(tmp_path):
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled) as info:
        train_n2v(_noisy((32, 32)), N2VConfig(**{**TINY, "steps": 50}),
                  checkpoint_dir=tmp_path, should_stop=stop_after_three)
    model = info.value.partial
    assert isinstance(model, N2VModel) and model.meta["steps_done"] == 3
    assert load_model(tmp_path / "last").meta["steps_done"] == 3


AXES = [("TYX", (3, 32, 32)), ("ZYX", (8, 32, 32)), ("CYX", (2, 32, 32)),
        ("TCZYX", (2, 2, 8, 16, 16))]
#: the fast tier keeps two of the eight combinations (each trains, ~0.7 s)
FAST = {("TYX", "n2v"), ("TCZYX", "n2v2")}


@pytest.mark.parametrize("axes, shape, variant", [
    pytest.param(axes, shape, variant, id=f"{variant}-{axes}",
                 marks=[] if (axes, variant) in FAST else [pytest.mark.slow])
    for variant in ("n2v", "n2v2") for axes, shape in AXES
])
def test_axes_and_variants_keep_shape_and_units(axes, shape, variant):
    image = _noisy(shape) * 30 + 1000  # output must come back in these units
    model = train_n2v(image, N2VConfig(**TINY, variant=variant), axes=axes)
    assert model.ndim == (3 if "Z" in axes else 2)
    assert model.channels == (2 if "C" in axes else 1)
    assert model.net.config.top_skip == (variant == "n2v")
    assert model.net.config.blurpool == (variant == "n2v2")
    out = denoise(model, image, DenoisePredictConfig(axes=axes))
    assert out.shape == image.shape and out.dtype == np.float32
    assert abs(out.mean() - image.mean()) < 0.5 * image.std()


def test_saved_model_applies_to_another_image(tmp_path):
    model = train_n2v(_noisy((32, 32)), N2VConfig(**TINY))
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.yaml", "weights.pt",
                                                            "meta.json"}
    other = _noisy((40, 56), seed=3)
    out = denoise(N2VModel.load(tmp_path / "m"), other)
    assert out.shape == other.shape


def test_bad_inputs():
    model = train_n2v(_noisy((32, 32)), N2VConfig(**TINY))
    with pytest.raises(ValueError, match="2D but the image axes 'ZYX'"):
        denoise(model, _noisy((8, 32, 32)), DenoisePredictConfig(axes="ZYX"))
    with pytest.raises(ValueError, match="1 channel"):
        denoise(model, _noisy((2, 32, 32)), DenoisePredictConfig(axes="CYX"))
    nan = _noisy((32, 32))
    nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_n2v(nan, N2VConfig(**TINY))
    with pytest.raises(ValueError, match="constant"):
        train_n2v(np.ones((32, 32), np.float32), N2VConfig(**TINY))
    with pytest.raises(ValueError, match="ambiguous"):
        train_n2v(_noisy((4, 32, 32)), N2VConfig(**TINY))
    with pytest.raises(ValueError, match="does not exist"):
        load_model("/nonexistent/folder")


def test_loading_another_task_is_refused(tmp_path):
    from cellsight.io.model_folder import save_model_folder

    model = train_n2v(_noisy((32, 32)), N2VConfig(**TINY))
    save_model_folder(tmp_path, {**model.config_dict(), "task": "semantic"},
                      model.net.state_dict())
    with pytest.raises(ValueError, match="'n2v' model is needed"):
        load_model(tmp_path)
