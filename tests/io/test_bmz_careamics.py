"""A package written by another tool: CAREamics' own N2V export (tests/data/bmz/README.md)."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsight.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "bmz"
ORIGINAL = DATA / "careamics_n2v_w2s.zip"  # as CAREamics wrote it (state dict, careamics UNet)
TORCHSCRIPT = DATA / "careamics_n2v_w2s_ts.zip"  # the same + TorchScript weights


def _npy(pkg, name):
    return np.load(io.BytesIO(zipfile.ZipFile(pkg).read(name)))


def _core_prediction(pkg, x):
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    descr = load_description(pkg, perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format="torchscript", devices=["cpu"])
    return predict(model=pipeline, inputs={"input": x}).members["prediction"].data.values


def test_the_careamics_package_is_what_careamics_wrote():
    import yaml

    rdf = yaml.safe_load(zipfile.ZipFile(ORIGINAL).read("rdf.yaml"))
    assert "CAREamics" in rdf["tags"] and rdf["version"] == "0.3.5"
    assert set(rdf["weights"]) == {"pytorch_state_dict"}
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["import_from"] == \
        "careamics.models.unet"
    assert "cellsight" not in (rdf.get("config") or {})


def test_without_careamics_installed_the_original_package_is_one_clear_error(no_careamics):
    from cellsight.core.bmz.run import load_package

    with pytest.raises(ValueError, match=r"careamics\.models\.unet.*not installed") as err:
        load_package(ORIGINAL, trust=True)
    assert "\n" not in str(err.value)


def test_an_installed_package_that_fails_to_import_is_named_or_avoided(monkeypatch,
                                                                      careamics_unloaded):
    import sys

    from cellsight.core.bmz.run import load_package

    class Broken:  # an installed CAREamics whose import fails (torchvision not matching torch)
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "careamics" or name.startswith("careamics."):
                raise RuntimeError("operator torchvision::nms does not exist")
            return None

    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    # only the state dict: the cause is named on one line
    with pytest.raises(ValueError, match=r"careamics\.models\.unet.*fails to import "
                       r"\(RuntimeError: operator torchvision::nms") as err:
        load_package(ORIGINAL, trust=True)
    assert "\n" not in str(err.value)
    # torchscript weights beside it: those are used instead, even with trust
    assert load_package(TORCHSCRIPT, trust=True).weights == "torchscript"


@pytest.mark.slow
def test_cellsight_equals_bioimageio_core_on_the_package_test_input():
    from cellsight.core.bmz.run import PackageModel, load_package, predict_package

    model = load_package(TORCHSCRIPT)  # torchscript: no code, no trust needed
    assert isinstance(model, PackageModel) and model.weights == "torchscript"
    assert model.kind == "image"
    x = _npy(TORCHSCRIPT, "inputs.npy")  # (1, 1, 64, 64)
    ours = predict_package(model, x[0, 0], device="cpu")
    theirs = _core_prediction(TORCHSCRIPT, x)
    assert ours.image.shape == (64, 64)
    assert np.abs(ours.output - theirs[0]).max() <= 1e-3  # measured: 0.0
    # and CAREamics' own prediction stored in the package (measured: 7.6e-6)
    assert np.abs(ours.output - _npy(TORCHSCRIPT, "outputs.npy")[0]).max() <= 1e-3


def test_a_larger_image_is_tiled_to_the_fixed_input_size():
    from cellsight.core.bmz.run import load_package, predict_package

    model = load_package(TORCHSCRIPT)
    x = _npy(TORCHSCRIPT, "inputs.npy")[0, 0]
    big = np.tile(x, (2, 3))[:100, :150]  # 100 x 150; the package takes 64 x 64 only
    result = predict_package(model, big, device="cpu")
    assert result.image.shape == (100, 150) and np.isfinite(result.image).all()
    # the top-left tile starts at the same pixel as the test input: same values inside
    alone = predict_package(model, x, device="cpu").image
    assert np.abs(result.image[8:40, 8:40] - alone[8:40, 8:40]).max() < 1.0


def test_cli_denoises_with_the_careamics_package(tmp_path, shared_data, capsys, no_careamics):
    import json

    noisy = tifffile.imread(shared_data / "denoise/w2s/noisy/w2s_001_0.tif")[200:296, 200:296]
    image = tmp_path / "noisy.tif"
    tifffile.imwrite(image, noisy)
    out = tmp_path / "clean.tif"
    assert main(["denoise", str(image), "--model", str(TORCHSCRIPT), "--trust", "--out",
                 str(out), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["weights"] == "torchscript" and summary["output"] == "image"
    clean = tifffile.imread(out)
    assert clean.shape == noisy.shape and clean.dtype == np.float32
    assert clean.std() < noisy.astype(np.float32).std()  # smoother than the input
    # no code in this package: it runs without --trust as well
    out2 = tmp_path / "clean2.tif"
    assert main(["denoise", str(image), "--model", str(TORCHSCRIPT), "--out", str(out2),
                 "--device", "cpu"]) == 0
    np.testing.assert_array_equal(tifffile.imread(out2), clean)
    capsys.readouterr()
    code = main(["denoise", str(image), "--model", str(ORIGINAL), "--out",
                 str(tmp_path / "x.tif")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "careamics.models.unet" in err


def test_a_folder_of_images_runs_through_the_package_as_a_batch(tmp_path, shared_data, capsys,
                                                                  no_careamics):
    import csv
    import json

    folder = tmp_path / "noisy"
    folder.mkdir()
    noisy = tifffile.imread(shared_data / "denoise/w2s/noisy/w2s_001_0.tif")
    for k in range(2):
        tifffile.imwrite(folder / f"field{k}.tif", noisy[k * 64:k * 64 + 64, :64])
    (folder / "broken.tif").write_text("not an image")
    out = tmp_path / "clean"
    code = main(["denoise", str(folder), "--model", str(TORCHSCRIPT), "--out", str(out),
                 "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and (summary["done"], summary["error"]) == (2, 1)  # one bad file reported
    clean = tifffile.imread(out / "field1.tif")
    assert clean.shape == (64, 64) and clean.dtype == np.float32
    one = tmp_path / "one.tif"  # the same as a run on that image alone
    assert main(["denoise", str(folder / "field1.tif"), "--model", str(TORCHSCRIPT), "--out",
                 str(one), "--device", "cpu"]) == 0
    np.testing.assert_array_equal(tifffile.imread(one), clean)
    capsys.readouterr()
    before = (out / "field0.tif").stat().st_mtime_ns
    main(["denoise", str(folder), "--model", str(TORCHSCRIPT), "--out", str(out)])
    with open(out / "summary.csv") as f:
        rows = {Path(r["file"]).name: r["status"] for r in csv.DictReader(f)}
    assert rows == {"broken.tif": "error", "field0.tif": "skipped", "field1.tif": "skipped"}
    assert (out / "field0.tif").stat().st_mtime_ns == before  # resumed, not redone
