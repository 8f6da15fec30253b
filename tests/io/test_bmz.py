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
@pytest.mark.slow
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


# --- import and run -------------------------------------------------------------------


def _core_prediction(pkg, x, weight_format="torchscript"):
    """bioimageio.core's own prediction of the package on ``x`` (batch, channel, *spatial)."""
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    descr = load_description(pkg, perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format=weight_format, devices=["cpu"])
    sample = predict(model=pipeline, inputs={"input": x})
    return sample.members["output"].data.values


def _test_input(pkg):
    import io

    return np.load(io.BytesIO(zipfile.ZipFile(pkg).read("test_input.npy")))


@pytest.fixture(scope="module")
def instance_pkg(tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "instance.zip"
    return export_package(tiny_model("instance"), out, name="tiny instance")


@pytest.mark.slow
def test_package_run_by_cellsight_equals_bioimageio_core(instance_pkg):
    from cellsight.core.bmz.run import PackageModel, load_package, predict_package

    model = load_package(instance_pkg, prefer_cellsight=False)
    assert isinstance(model, PackageModel) and model.weights == "torchscript"
    assert model.kind == "instance"
    x = _test_input(instance_pkg)
    ours = predict_package(model, x[0, 0], device="cpu")
    theirs = _core_prediction(instance_pkg, x)[0]
    assert ours.output.shape == theirs.shape
    assert np.abs(ours.output - theirs).max() <= 1e-3
    assert ours.labels.shape == x.shape[2:] and ours.labels.dtype.kind == "i"


@pytest.mark.slow
def test_cellsight_package_round_trips_to_the_same_model(instance_pkg):
    from cellsight.core.bmz.run import load_package

    original = tiny_model("instance")
    back = load_package(instance_pkg)
    assert isinstance(back, InstanceModel)
    assert back.config == original.config
    for key, value in original.net.state_dict().items():
        assert torch.equal(back.net.state_dict()[key], value), key
    assert back.meta["package"]["name"] == "cellsight tiny instance"


@pytest.mark.slow
def test_architecture_code_needs_trust(instance_pkg):
    from cellsight.core.bmz.run import load_package
    from cellsight.io.bmz.read import UntrustedCode

    with pytest.raises(UntrustedCode, match=r"cellsight_unet\.py \(sha256 [0-9a-f]{64}\).*--trust"):
        load_package(instance_pkg, prefer_cellsight=False, weights="pytorch_state_dict")
    model = load_package(instance_pkg, trust=True, prefer_cellsight=False,
                         weights="pytorch_state_dict")
    assert model.weights == "pytorch_state_dict"


@pytest.mark.slow
def test_changed_file_in_a_folder_package_is_refused(instance_pkg, tmp_path):
    from cellsight.core.bmz.run import load_package

    zipfile.ZipFile(instance_pkg).extractall(tmp_path)
    assert load_package(tmp_path, prefer_cellsight=False).kind == "instance"  # folder works
    weights = tmp_path / "weights.torchscript"
    weights.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(ValueError, match="weights.torchscript.*sha256"):
        load_package(tmp_path, prefer_cellsight=False)


def test_not_a_package_is_one_clear_error(tmp_path):
    from cellsight.core.bmz.run import load_package

    with pytest.raises(ValueError, match="not a bioimage.io package"):
        load_package(tmp_path)


def foreign_copy(pkg, out, *, torchscript: bool = True):
    """A copy of a cellsight package that looks written by another tool.

    ``config.cellsight`` is removed (so cellsight cannot load it as its own model); without
    ``torchscript`` only the state dict with its architecture file (Python code) is left.
    """
    with zipfile.ZipFile(pkg) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        rdf["config"].pop("cellsight", None)
        rdf["name"] = "other tool " + rdf["name"]
        drop = set()
        if not torchscript:
            drop.add(rdf["weights"].pop("torchscript")["source"])
        with zipfile.ZipFile(out, "w") as o:
            o.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
            for name in z.namelist():
                if name not in drop and name != "rdf.yaml":
                    o.writestr(name, z.read(name))
    return out


@pytest.mark.slow
def test_a_foreign_copy_is_run_as_a_package(instance_pkg, tmp_path):
    from cellsight.core.bmz.run import PackageModel, load_package
    from cellsight.io.bmz.read import UntrustedCode

    other = foreign_copy(instance_pkg, tmp_path / "other.zip", torchscript=False)
    with pytest.raises(UntrustedCode):
        load_package(other)
    model = load_package(other, trust=True)
    assert isinstance(model, PackageModel) and model.kind == "instance"
