import numpy as np
import pytest

from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.nn.training import train_pixel_classifier
from cellsight.core.progress import Cancelled


def _blobs(seed=0, size=48):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), bool)
    for _ in range(4):
        cy, cx = rng.integers(8, size - 8, 2)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 36
    image = mask * 1.0 + rng.normal(0, 0.2, mask.shape)
    return image[None].astype(np.float32), mask


UNET = UNetConfig(depth=2, base_channels=8, out_channels=2)


def _config(**kw):
    base = dict(
        steps=40, batch_size=4, patch_size=32, val_every=10, learning_rate=5e-3, device="cpu"
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.slow
def test_training_learns_from_dense_targets_and_reports():
    image, mask = _blobs()
    events, checkpoints = [], []
    result = train_pixel_classifier(
        [image],
        [mask.astype(np.uint8) + 1],
        UNET,
        _config(),
        progress=events.append,
        on_checkpoint=lambda kind, payload: checkpoints.append(kind),
    )
    assert result.stop_reason == "completed" and result.steps_done == 40
    assert [h["step"] for h in result.history] == [10, 20, 30, 40]
    assert all(h["val_loss"] is not None for h in result.history)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert "best" in checkpoints and checkpoints[-1] == "last"
    assert any("val_loss" in e.values for e in events)
    assert not result.model.training
    assert set(result.last_state) == {"model", "optimizer", "step"}


@pytest.mark.slow
def test_early_stop_and_stop_request():
    image, mask = _blobs()
    targets = [mask.astype(np.uint8) + 1]
    result = train_pixel_classifier(
        [image], targets, UNET, _config(steps=400, val_every=1, patience=1, learning_rate=1e-6)
    )
    assert result.stop_reason == "early_stop" and result.steps_done < 400
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled) as info:
        train_pixel_classifier(
            [image], targets, UNET, _config(steps=100), should_stop=stop_after_three
        )
    stopped = info.value.partial  # one stop rule: Cancelled, with what was done
    assert stopped.stop_reason == "cancelled" and stopped.steps_done == 3
    assert stopped.last_state["step"] == 3  # the last checkpoint is kept


@pytest.mark.slow
def test_resume_from_state_continues():
    image, mask = _blobs()
    targets = [mask.astype(np.uint8) + 1]
    first = train_pixel_classifier([image], targets, UNET, _config(steps=20))
    again = train_pixel_classifier(
        [image], targets, UNET, _config(steps=10), init_state=first.last_state
    )
    assert again.history[0]["loss"] < first.history[0]["loss"]


def test_bad_training_data():
    image, mask = _blobs()
    with pytest.raises(ValueError, match="outside 0..2"):
        train_pixel_classifier([image], [mask.astype(np.uint8) + 5], UNET, _config())
    with pytest.raises(ValueError, match="shape"):
        train_pixel_classifier([image], [mask[:10]], UNET, _config())
    with pytest.raises(ValueError, match="2D model needs"):
        train_pixel_classifier([image[None]], [mask[None]], UNET, _config())


@pytest.mark.slow
def test_soft_targets_train_and_are_checked():
    image, mask = _blobs()
    target = mask.astype(np.uint8) + 1
    shares = np.stack([~mask, mask]).astype(np.float32)
    result = train_pixel_classifier(
        [image], [target], UNET, _config(steps=20), soft_targets=[shares]
    )
    assert result.steps_done == 20
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    with pytest.raises(ValueError, match="Soft target 0 has shape"):
        train_pixel_classifier([image], [target], UNET, _config(), soft_targets=[shares[:1]])
    with pytest.raises(ValueError, match="NaN"):
        train_pixel_classifier(
            [image], [target], UNET, _config(), soft_targets=[shares * np.nan]
        )


@pytest.mark.slow
def test_mixed_precision_only_where_native(monkeypatch):
    import torch

    from cellsight.core.nn import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    with precision.autocast(cpu, True):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    with precision.autocast(cpu, True):
        assert torch.is_autocast_enabled("cpu")
    with precision.autocast(cpu, False):
        assert not torch.is_autocast_enabled("cpu")
    # prediction stays float32 on the CPU, whatever the CPU can do
    with precision.autocast(cpu, True, training=False):
        assert not torch.is_autocast_enabled("cpu")
    # a bf16 training run on the CPU still learns and hands back float32 weights
    image, mask = _blobs()
    result = train_pixel_classifier([image], [mask.astype(np.uint8) + 1], UNET, _config())
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert all(v.dtype == torch.float32 for v in result.model.state_dict().values()
               if v.is_floating_point())
    assert all(v.is_contiguous() for v in result.model.state_dict().values())


@pytest.mark.slow
def test_weight_averaging_keeps_the_mean_of_the_last_steps():
    import torch

    image, mask = _blobs()
    targets = [mask.astype(np.uint8) + 1]
    plain = train_pixel_classifier([image], targets, UNET, _config())
    averaged = train_pixel_classifier([image], targets, UNET, _config(weight_averaging=0.5))
    assert plain.averaged_steps == 0
    assert averaged.averaged_steps == 5  # steps 20..40, one snapshot every 5 steps
    last = averaged.last_state["model"]
    state = averaged.model.state_dict()
    name = next(k for k in state if k.endswith("weight") and state[k].ndim == 4)
    assert not torch.equal(state[name], last[name])  # not the last weights
    bn_mean = next(k for k in state if k.endswith("running_mean"))
    assert not torch.equal(state[bn_mean], last[bn_mean])  # fresh batch-norm statistics
    # the averaged model still separates the blobs
    with torch.no_grad():
        pred = averaged.model(torch.from_numpy(image[None])).argmax(1)[0].numpy() == 1
    assert (pred == mask).mean() > 0.85


@pytest.mark.slow
def test_hard_mining_marks_the_pixels_the_model_gets_wrong(monkeypatch):
    import torch

    from cellsight.core.nn import training
    from cellsight.core.nn.unet import UNet

    image, mask = _blobs()
    marked = []
    original = training.PatchSampler.set_hard

    def spy(self, index, hard):
        marked.append(hard.copy())
        original(self, index, hard)

    monkeypatch.setattr(training.PatchSampler, "set_hard", spy)
    monkeypatch.setattr(training, "MINING_BUDGET", 10.0)  # no time limit in the test
    targets = [mask.astype(np.uint8) + 1]
    config = _config(hard_mining=0.5, val_fraction=0.0)
    states = {}

    def keep(kind, payload):
        if kind == "last":
            states[payload["step"]] = payload["model"]

    train_pixel_classifier([image], targets, UNET, config, on_checkpoint=keep)
    # one image, marked at the validations of steps 10, 20, 30 (not at the end of the run)
    assert len(marked) == 3
    assert marked[0].shape == mask.shape and marked[0].any()  # an untrained net errs
    net = UNet(UNET)
    net.load_state_dict(states[30])
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(image[None])).argmax(1)[0].numpy()
    # the marks are the errors of the weights at that validation
    assert np.array_equal(marked[-1], pred != mask)
    plain = []
    monkeypatch.setattr(training.PatchSampler, "set_hard", lambda *a: plain.append(a))
    train_pixel_classifier([image], targets, UNET, _config())
    assert plain == []  # off by default
