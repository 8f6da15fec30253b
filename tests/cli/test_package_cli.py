"""``segment`` / ``denoise --model PKG`` with bioimage.io packages written by other tools."""

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsight.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_bmz import foreign_copy, tiny_model  # noqa: E402

# CLI runs that build and load model packages: seconds each, not in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    from cellsight.core.bmz.export import export_package

    folder = tmp_path_factory.mktemp("pkgs")
    made = {}
    for task in ("instance", "semantic", "n2v"):
        own = export_package(tiny_model(task), folder / f"{task}.zip")
        made[task] = foreign_copy(own, folder / f"other-{task}.zip")
    made["code"] = foreign_copy(folder / "semantic.zip", folder / "code.zip", torchscript=False)
    return made


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, np.random.default_rng(0).normal(10, 3, (44, 52)).astype(np.float32))
    return path


def test_segment_with_a_foreign_instance_package(packages, image, tmp_path, capsys):
    out = tmp_path / "labels.tif"
    assert main(["segment", "--model", str(packages["instance"]), str(image), "--out",
                 str(out), "--min-size", "0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == "instance" and summary["weights"] == "torchscript"
    labels = tifffile.imread(out)
    assert labels.shape == (44, 52) and labels.dtype.kind == "u"
    assert summary["objects"] == int(labels.max())
    # the same output rules as model folders: no silent overwrite
    assert main(["segment", "--model", str(packages["instance"]), str(image), "--out",
                 str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_segment_with_a_foreign_semantic_package_equals_predict_package(packages, image,
                                                                        tmp_path, capsys):
    from cellsight.core.bmz.run import load_package, predict_package

    out, prob = tmp_path / "sem.tif", tmp_path / "prob.tif"
    assert main(["segment", "--model", str(packages["semantic"]), str(image), "--out", str(out),
                 "--probabilities", str(prob), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "semantic"
    expected = predict_package(load_package(packages["semantic"]), tifffile.imread(image),
                               device="cpu")
    np.testing.assert_array_equal(tifffile.imread(out), expected.labels)
    np.testing.assert_allclose(tifffile.imread(prob), expected.output, atol=1e-6)
    # --mode that contradicts the package's output, or an instance-only option: one line
    code = main(["segment", "--mode", "instance", "--model", str(packages["semantic"]),
                 str(image), "--out", str(tmp_path / "x.tif")])
    assert code == 2 and "--mode semantic" in capsys.readouterr().err
    code = main(["segment", "--model", str(packages["semantic"]), str(image), "--out",
                 str(tmp_path / "x.tif"), "--min-size", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "--min-size does not apply" in err and len(err.strip().splitlines()) == 1


def test_segment_with_an_image_package_writes_a_float_image(packages, image, tmp_path, capsys):
    out = tmp_path / "raw.tif"
    assert main(["segment", "--model", str(packages["n2v"]), str(image), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == "image"
    data = tifffile.imread(out)
    assert data.dtype == np.float32 and data.shape == (44, 52)


def test_denoise_with_a_foreign_n2v_package(packages, image, tmp_path, capsys):
    from cellsight.core.bmz.run import load_package, predict_package

    out = tmp_path / "clean.tif"
    assert main(["denoise", str(image), "--model", str(packages["n2v"]), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "Denoised image written" in capsys.readouterr().err
    expected = predict_package(load_package(packages["n2v"]), tifffile.imread(image),
                               device="cpu")
    np.testing.assert_allclose(tifffile.imread(out), expected.image, atol=1e-6)
    code = main(["denoise", str(image), "--model", str(packages["semantic"]), "--out",
                 str(tmp_path / "x.tif")])
    assert code == 2 and "cellsight segment" in capsys.readouterr().err


def test_architecture_code_runs_only_with_trust(packages, image, tmp_path, capsys):
    pkg = packages["code"]
    arch = zipfile.ZipFile(pkg).read("cellsight_unet.py")
    out = tmp_path / "sem.tif"
    code = main(["segment", "--model", str(pkg), str(image), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "cellsight_unet.py" in err and hashlib.sha256(arch).hexdigest() in err
    assert "--trust" in err and not out.exists()
    assert main(["segment", "--model", str(pkg), str(image), "--out", str(out), "--trust"]) == 0
    assert json.loads(capsys.readouterr().out)["weights"] == "pytorch_state_dict"
    assert tifffile.imread(out).shape == (44, 52)


def test_trust_without_a_package_is_refused(packages, image, tmp_path, capsys):
    code = main(["segment", "--model", "nuclei", str(image), "--out", str(tmp_path / "a.tif"),
                 "--trust"])
    assert code == 2 and "--trust applies to bioimage.io packages" in capsys.readouterr().err


def test_blockwise_runs_of_foreign_packages(packages, image, tmp_path, capsys):
    from cellsight.config.blocks import BlockConfig
    from cellsight.config.instances import InstancePostConfig
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import load_package
    from cellsight.io.omezarr import read_ome_zarr

    image = tmp_path / "bigger.tif"
    tifffile.imwrite(image, np.random.default_rng(2).normal(10, 3, (100, 120)).astype("float32"))
    out = tmp_path / "big.ome.zarr"
    assert main(["segment", "--model", str(packages["instance"]), str(image), "--out",
                 str(out), "--block-size", "64", "--min-size", "0", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["blocks"] == 4 and summary["output"] == "instance"
    core = predict_package_blockwise(load_package(packages["instance"]), tifffile.imread(image),
                                     blocks=BlockConfig(block_size=64), device="cpu",
                                     post=InstancePostConfig(min_size=0))
    np.testing.assert_array_equal(np.asarray(read_ome_zarr(out).data), core.labels)
    assert summary["objects"] == core.n_objects
    den = tmp_path / "den.ome.zarr"
    assert main(["denoise", "--model", str(packages["n2v"]), str(image), "--out", str(den),
                 "--block-size", "64", "--device", "cpu"]) == 0
    written = np.asarray(read_ome_zarr(den).data)
    assert written.shape == (100, 120) and written.dtype == np.float32
    code = main(["segment", "--model", str(packages["semantic"]), str(image), "--out",
                 str(tmp_path / "s.ome.zarr"), "--probabilities", str(tmp_path / "p.tif")])
    assert code == 2 and "blockwise run writes the labels only" in capsys.readouterr().err
    code = main(["segment", "--model", str(packages["instance"]), str(image), "--out",
                 str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err  # kept


def test_a_batch_through_a_foreign_instance_package(packages, image, tmp_path, capsys):
    import csv

    from cellsight.core.bmz.run import load_package, predict_package

    other = tmp_path / "second.tif"
    tifffile.imwrite(other, np.random.default_rng(1).normal(10, 3, (40, 48)).astype(np.float32))
    out = tmp_path / "labels"
    assert main(["segment", "--model", str(packages["instance"]), str(image), str(other),
                 "--out", str(out), "--min-size", "0", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["files"], summary["done"], summary["error"]) == (2, 2, 0)
    from cellsight.config.instances import InstancePostConfig

    alone = predict_package(load_package(packages["instance"]), tifffile.imread(other),
                            device="cpu", post=InstancePostConfig(min_size=0))
    np.testing.assert_array_equal(tifffile.imread(out / "second.tif"), alone.labels)
    with open(out / "summary.csv") as f:
        objects = {Path(r["file"]).name: r["objects"] for r in csv.DictReader(f)}
    assert objects["second.tif"] == str(int(alone.labels.max()))
    code = main(["segment", "--model", str(packages["semantic"]), str(image), str(other),
                 "--out", str(tmp_path / "b"), "--probabilities", "p.tif"])
    assert code == 2 and "--probabilities writes one file" in capsys.readouterr().err


def test_timeseries_and_tta_with_a_foreign_package(packages, tmp_path, capsys):
    from cellsight.config.instances import InstancePostConfig
    from cellsight.core.bmz.run import load_package, predict_package

    stack = np.random.default_rng(3).normal(10, 3, (3, 48, 64)).astype(np.float32)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, stack)  # no axes in the file: --timeseries says T comes first
    out = tmp_path / "lab.tif"
    assert main(["segment", "--model", str(packages["instance"]), str(path), "--out", str(out),
                 "--timeseries", "--tta", "--min-size", "0", "--device", "cpu"]) == 0
    capsys.readouterr()
    expected = predict_package(load_package(packages["instance"]), stack, axes="TYX",
                               device="cpu", tta=True, post=InstancePostConfig(min_size=0))
    np.testing.assert_array_equal(tifffile.imread(out), expected.labels)
    code = main(["segment", "--model", str(packages["instance"]), str(path), "--out",
                 str(tmp_path / "b.tif"), "--timeseries", "--axes", "ZYX"])
    assert code == 2 and "does not start with T" in capsys.readouterr().err
