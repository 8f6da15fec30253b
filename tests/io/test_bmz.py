"""bioimage.io packages: export, bioimageio.core's own model test, import and run (offline)."""

import zipfile

import numpy as np
import pytest
import torch
import yaml

from cellsight.config.instances import InstanceConfig
from cellsight.config.n2v import N2VConfig
from cellsight.config.semantic import SemanticConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.bmz.export import export_package
from cellsight.core.denoise.model import N2VModel, unet_config_for
from cellsight.core.nn.unet import UNet
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.core.segmentation.semantic import SemanticModel


def _net(config: UNetConfig) -> UNet:
    torch.manual_seed(0)
    net = UNet(config)
    for m in net.modules():  # non-trivial batch-norm statistics, so eval mode matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.8, 1.2)
    return net.eval()


def tiny_model(task: str):
    if task == "n2v":
        cfg = N2VConfig(depth=2, base_channels=4)
        return N2VModel(_net(unet_config_for(cfg, 2, 1)), cfg, mean=(10.0,), std=(3.0,))
    unet = UNetConfig(depth=2, base_channels=4, out_channels=3)
    if task == "instance":
        return InstanceModel(InstanceConfig(unet=unet), _net(unet), {"training_data": {"frames": 2}})
    return SemanticModel(SemanticConfig(n_classes=3, unet=unet), _net(unet))


def _test_model(path, weight_format=None):
    from bioimageio.core import test_model

    summary = test_model(path, weight_format=weight_format)
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    return summary.status, failed


@pytest.mark.parametrize("task", [
    pytest.param("semantic", marks=pytest.mark.slow), "instance",
    pytest.param("n2v", marks=pytest.mark.slow)])
def test_exported_tiny_models_pass_bioimageio_core_test(tmp_path, task):
    pkg = export_package(tiny_model(task), tmp_path / f"{task}.zip", name=f"tiny {task}")
    status, failed = _test_model(pkg, "torchscript" if task != "instance" else None)
    assert status == "passed", failed
    names = set(zipfile.ZipFile(pkg).namelist())
    assert {"rdf.yaml", "weights.pt", "weights.torchscript", "cellsight_unet.py", "cover.png",
            "README.md", "test_input.npy", "test_output.npy", "cellsight_config.yaml",
            "cellsight_meta.json"} <= names
    rdf = yaml.safe_load(zipfile.ZipFile(pkg).read("rdf.yaml"))
    assert rdf["format_version"].startswith("0.5")
    assert rdf["config"]["cellsight"]["task"] == task
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "UNetArch"


def test_export_refuses_to_overwrite(tmp_path):
    out = tmp_path / "m.zip"
    out.write_text("mine")
    with pytest.raises(ValueError, match="exists"):
        export_package(tiny_model("semantic"), out)
    assert out.read_text() == "mine"


def test_export_refuses_a_test_image_of_wrong_size(tmp_path):
    with pytest.raises(ValueError, match="must be"):
        export_package(tiny_model("semantic"), tmp_path / "m.zip",
                       test_image=np.zeros((1, 50, 50), np.float32))


@pytest.mark.slow
def test_builtin_nuclei_package_passes_bioimageio_core_test(tmp_path):
    pkg = export_package("nuclei", tmp_path / "nuclei.zip")
    status, failed = _test_model(pkg)
    assert status == "passed", failed
    readme = zipfile.ZipFile(pkg).read("README.md").decode()
    assert readme.startswith("# Model card: `nuclei`")
