"""``cellsight export`` and package paths as ``--model`` of segment / denoise."""

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellsight.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_bmz import tiny_model  # noqa: E402

# CLI runs that build and load model packages: seconds each, not in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture
def instance_folder(tmp_path):
    return tiny_model("instance").save(tmp_path / "model")


def test_export_then_segment_with_the_package(tmp_path, instance_folder, capsys):
    pkg = tmp_path / "pkg.zip"
    assert main(["export", str(instance_folder), "--out", str(pkg)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(pkg) and "rdf.yaml" in zipfile.ZipFile(pkg).namelist()
    assert main(["export", str(instance_folder), "--out", str(pkg)]) == 2  # no --overwrite
    assert "exists" in capsys.readouterr().err
    image = tmp_path / "img.tif"
    rng = np.random.default_rng(0)
    tifffile.imwrite(image, rng.random((48, 40)).astype(np.float32))
    out = tmp_path / "labels.tif"
    assert main(["segment", "--model", str(pkg), "--out", str(out), str(image)]) == 0
    assert tifffile.imread(out).shape == (48, 40)


def test_denoise_accepts_an_n2v_package(tmp_path):
    from cellsight.core.bmz.export import export_package

    pkg = export_package(tiny_model("n2v"), tmp_path / "n2v.zip")
    image = tmp_path / "noisy.tif"
    tifffile.imwrite(image, np.random.default_rng(0).normal(10, 3, (40, 36)).astype(np.float32))
    out = tmp_path / "clean.tif"
    assert main(["denoise", str(image), "--model", str(pkg), "--out", str(out)]) == 0
    assert tifffile.imread(out).shape == (40, 36)


def test_segment_refuses_a_package_of_the_other_kind(tmp_path, capsys):
    from cellsight.core.bmz.export import export_package

    pkg = export_package(tiny_model("semantic"), tmp_path / "sem.zip")
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.float32))
    code = main(["segment", "--model", str(pkg), "--out", str(tmp_path / "o.tif"), str(image)])
    assert code == 2 and "semantic model" in capsys.readouterr().err
