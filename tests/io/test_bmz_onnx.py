"""A package with onnx weights only, as an ONNX-exporting tool would write it (issue 16).

The package is made from a cellsight package: its TorchScript network exported to ONNX by
torch's exporter, the other weights removed, the description re-hashed. cellsight runs it
with onnxruntime and must give what the TorchScript weights give and what
bioimageio.core's own prediction gives.
"""

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_bmz import foreign_copy, tiny_model  # noqa: E402

pytestmark = pytest.mark.slow  # exports packages: seconds


def onnx_only(pkg: Path, out: Path) -> Path:
    """``pkg`` with its TorchScript network as ``weights.onnx``, the only weights."""
    with zipfile.ZipFile(pkg) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        script = torch.jit.load(io.BytesIO(z.read(rdf["weights"]["torchscript"]["source"])))
        buffer = io.BytesIO()
        dynamic = {0: "batch", 2: "y", 3: "x"}
        torch.onnx.export(script.eval(), torch.zeros(1, 1, 64, 64), buffer, dynamo=False,
                          input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": dynamic, "output": dynamic})
        data = buffer.getvalue()
        drop = {rdf["weights"]["torchscript"]["source"],
                rdf["weights"]["pytorch_state_dict"]["source"],
                rdf["weights"]["pytorch_state_dict"]["architecture"]["source"]}
        rdf["weights"] = {"onnx": {"source": "weights.onnx", "opset_version": 17,
                                   "sha256": hashlib.sha256(data).hexdigest()}}
        with zipfile.ZipFile(out, "w") as o:
            o.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
            o.writestr("weights.onnx", data)
            for name in z.namelist():
                if name not in drop and name != "rdf.yaml":
                    o.writestr(name, z.read(name))
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    from cellsight.core.bmz.export import export_package

    folder = tmp_path_factory.mktemp("onnx")
    own = export_package(tiny_model("instance"), folder / "instance.zip")
    scripted = foreign_copy(own, folder / "other.zip")
    return scripted, onnx_only(scripted, folder / "onnx.zip")


def test_onnx_package_runs_like_its_torchscript_and_like_bioimageio_core(packages):
    pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    from cellsight.core.bmz.run import load_package, predict_package

    scripted, onnx = packages
    model = load_package(onnx)
    assert model.weights == "onnx" and model.kind == "instance"
    image = np.random.default_rng(0).normal(10, 3, (70, 90)).astype(np.float32)
    ours = predict_package(model, image, device="cpu").output
    reference = predict_package(load_package(scripted), image, device="cpu").output
    assert np.abs(ours - reference).max() < 1e-4
    test_input = np.load(io.BytesIO(zipfile.ZipFile(onnx).read("test_input.npy")))
    descr = load_description(onnx, perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format="onnx", devices=["cpu"])
    core = predict(model=pipeline, inputs={str(descr.inputs[0].id): test_input})
    core_out = core.members[descr.outputs[0].id].data.values[0]
    cellsight = predict_package(model, test_input[0, 0], device="cpu").output
    assert np.abs(cellsight - core_out).max() <= 1e-3


def test_onnx_package_in_the_cli(packages, tmp_path, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
    import json

    import tifffile

    from cellsight.cli import main

    _, onnx = packages
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, np.random.default_rng(1).normal(10, 3, (40, 56)).astype(np.float32))
    assert main(["segment", "--model", str(onnx), str(path), "--out",
                 str(tmp_path / "l.tif"), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["weights"] == "onnx"
