import numpy as np
import pytest

from cellsight.config.instances import (
    IGNORE,
    InstanceConfig,
    InstancePostConfig,
    InstancePredictConfig,
)
from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    estimate_diameter,
    instance_class_maps,
    instances_from_maps,
    load_builtin,
    predict_instance_maps,
    rescale_factor,
    segment_instances,
    train_instances,
)
from cellsight.models import builtin_model_dir, resolve_model
from cellsight.plugin.samples import load_sample


def scene(seed=0, n=64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    lab = np.zeros((n, n), np.int32)
    k = 1
    for y in range(10, n - 6, 15):
        for x in range(10, n - 6, 15):
            r = rng.uniform(5, 7.5)
            lab[((yy - y) ** 2 + (xx - x) ** 2 < r * r) & (lab == 0)] = k
            k += 1
    image = (lab > 0) * 1.0 + rng.normal(0, 0.1, lab.shape)
    return image.astype(np.float32), lab


def tiny_config(steps=80) -> InstanceConfig:
    return InstanceConfig(
        unet=UNetConfig(depth=2, base_channels=8, out_channels=3),
        training=TrainConfig(steps=steps, batch_size=4, patch_size=48, val_every=40,
                             learning_rate=4e-3, device="cpu"),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inst") / "model"
    data = [scene(s) for s in range(3)]
    model = train_instances([d[0] for d in data], [d[1] for d in data], tiny_config(),
                            out_dir=folder)
    return model, folder


@pytest.mark.slow
def test_training_writes_an_instance_model_folder(trained):
    model, folder = trained
    assert model.config.task == "instance" and model.config.unet.out_channels == 3
    assert 11 < model.config.diameter < 15  # measured from the labels (radius 5-7.5)
    loaded = InstanceModel.load(folder)
    assert loaded.config == model.config
    assert loaded.meta["training_data"]["frames"] == 3
    with pytest.raises(ValueError, match="instance"):
        from cellsight.core.segmentation.semantic import SemanticModel

        SemanticModel.load(folder)  # not a semantic model


@pytest.mark.slow
def test_trained_model_separates_objects(trained):
    model, _ = trained
    image, lab = scene(7)
    maps = predict_instance_maps(model, image, InstancePredictConfig(device="cpu"))
    assert maps.foreground.shape == image.shape and not maps.has_time
    assert 0 <= maps.boundary.min() and maps.foreground.max() <= 1.0 + 1e-5
    out = instances_from_maps(maps, InstancePostConfig(min_size=5))
    assert match_instances(lab, out).ap > 0.5


@pytest.mark.slow
def test_prediction_modes_and_shapes(trained):
    model, _ = trained
    image, _ = scene(3)
    stack = np.stack([image, image[::-1], image[:, ::-1]])
    cpu = {"device": "cpu"}
    t = predict_instance_maps(model, stack, InstancePredictConfig(mode="t", **cpu))
    assert t.has_time and t.foreground.shape == stack.shape
    z = predict_instance_maps(model, stack, InstancePredictConfig(mode="3d", **cpu))
    assert not z.has_time and z.boundary.shape == stack.shape  # 2D model slice by slice
    labels = instances_from_maps(z)
    assert labels.shape == stack.shape
    tz = predict_instance_maps(model, stack[None], InstancePredictConfig(mode="t", **cpu))
    assert tz.foreground.shape == (1, *stack.shape)
    with pytest.raises(ValueError, match="Mode '2d' needs a 2D image"):
        predict_instance_maps(model, stack, InstancePredictConfig(mode="2d"))
    with pytest.raises(ValueError, match="Mode 't'"):
        predict_instance_maps(model, image, InstancePredictConfig(mode="t"))


@pytest.mark.slow
def test_rescale_option_and_stop(trained):
    model, _ = trained
    assert rescale_factor(model, 0) == model.config.scale
    assert rescale_factor(model, 2 * model.config.diameter) == pytest.approx(0.5)
    image, _ = scene(4)
    big = np.kron(image, np.ones((2, 2), np.float32))  # objects twice as wide
    maps = predict_instance_maps(
        model, big, InstancePredictConfig(diameter=2 * model.config.diameter, device="cpu")
    )
    assert maps.foreground.shape == big.shape  # results come back at the input size
    with pytest.raises(Cancelled):
        predict_instance_maps(model, np.stack([image] * 3), InstancePredictConfig(mode="t"),
                              should_stop=lambda: True)


def test_class_maps_for_stacks_and_sparse_annotation():
    config = tiny_config()
    _, lab = scene(1)
    annotated = np.ones(lab.shape, bool)
    annotated[:, 40:] = False
    maps = instance_class_maps([np.stack([lab, lab])], config)
    assert maps[0].shape == (2, *lab.shape)
    sparse = instance_class_maps([lab], config, annotated=[annotated])[0]
    assert (sparse[:, 40:] == IGNORE).all() and (sparse[:, :40] != IGNORE).all()
    with pytest.raises(ValueError, match="annotated masks"):
        instance_class_maps([lab], config, annotated=[annotated, annotated])
    with pytest.raises(ValueError, match="integers"):
        instance_class_maps([lab.astype(float)], config)


@pytest.mark.slow
def test_fine_tuning_keeps_architecture_and_diameter(trained, tmp_path):
    model, folder = trained
    image, lab = scene(9)
    tuned = train_instances(image, lab, tiny_config(steps=2), init=folder,
                            out_dir=tmp_path / "tuned")
    assert tuned.config.unet == model.config.unet
    assert tuned.config.diameter == model.config.diameter
    assert InstanceModel.load(tmp_path / "tuned").config.task == "instance"


def test_builtin_nuclei_model_ships_small_and_loads_without_download():
    folder = builtin_model_dir("nuclei")
    assert resolve_model("nuclei") == folder
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert {"config.yaml", "weights.pt", "meta.json"} <= set(sizes)
    assert sum(sizes.values()) < 20 * 1024**2
    model = load_builtin("nuclei")
    assert model.config.task == "instance" and model.config.diameter > 0
    sources = [s["name"] for s in model.meta["training_data"]["sources"]]
    assert not any(t in s for s in sources for t in ("t021", "t031", "t033", "t039"))
    with pytest.raises(ValueError, match="No built-in model"):
        builtin_model_dir("mitochondria")


@pytest.mark.slow
def test_builtin_model_on_real_nuclei_with_estimated_diameter():
    model = load_builtin("nuclei")
    image = load_sample("nuclei_2d")[:256, :256]
    truth = load_sample("nuclei_2d_masks")[:256, :256]
    diameter = estimate_diameter(model, image, InstancePredictConfig(device="cpu"))
    assert 15 < diameter < 35  # DSB2018 nuclei: ~24 px
    labels = segment_instances(model, image, InstancePredictConfig(diameter=diameter,
                                                                   device="cpu"))
    assert labels.dtype == np.int32 and labels.shape == image.shape
    assert match_instances(truth, labels).ap > 0.7
