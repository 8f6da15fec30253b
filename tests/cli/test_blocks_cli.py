"""`cellsight segment|denoise` on OME-Zarr (blockwise) and on batches of files."""

import csv
import json

import numpy as np
import pytest

from cellsight.cli import main
from cellsight.io.omezarr import read_ome_zarr, write_ome_zarr
from cellsight.io.tiff import write_image

# CLI runs that build and load model packages: seconds each, not in the fast tier
pytestmark = pytest.mark.slow


def _nuclei(side=200, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    img = rng.normal(10, 2, (side, side))
    for cy in range(18, side - 10, 30):
        for cx in range(18, side - 10, 30):
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 90] += 90
    return img.astype(np.uint16)


def test_segment_ome_zarr_blockwise(tmp_path, capsys):
    src = write_ome_zarr(tmp_path / "in.ome.zarr", _nuclei(), axes="YX", scale=(0.5, 0.5))
    out = tmp_path / "nuclei.ome.zarr"
    args = ["segment", "--model", "nuclei", "--diameter", "20", "--block-size", "64",
            "--out", str(out), str(src)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    labels = read_ome_zarr(out)
    assert labels.axes == "YX" and labels.scale == (0.5, 0.5)
    assert summary["objects"] == int(labels.data.max().compute()) >= 30
    assert summary["blocks"] == 16
    assert main(args) == 2  # an existing output is kept...
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0  # ...unless asked
    capsys.readouterr()
    into = src / "labels" / "nuclei"  # into the source image's labels/ group
    assert main([*args[:-3], "--out", str(into), str(src)]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(into)
    stored = read_ome_zarr(into)
    assert stored.kind == "labels" and stored.axes == "YX"
    assert (stored.data.compute() == labels.data.compute()).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cellsight-")]


def test_batch_folder_resumes_and_reports_a_broken_file(tmp_path, capsys):
    src = tmp_path / "plate"
    for i in range(3):
        write_image(src / f"well{i}.tif", _nuclei(96, i))
    (src / "bad.tif").write_text("not an image")
    out = tmp_path / "labels"
    args = ["segment", "--model", "nuclei", "--diameter", "20", "--out", str(out), str(src)]
    assert main(args) == 1  # a file failed: reported, the others done
    first = json.loads(capsys.readouterr().out)
    assert (first["done"], first["error"]) == (3, 1)
    with open(out / "summary.csv") as f:
        rows = {r["file"].split("/")[-1]: r for r in csv.DictReader(f)}
    assert rows["bad.tif"]["status"] == "error" and rows["bad.tif"]["error"]
    assert int(rows["well0.tif"]["objects"]) >= 4
    assert main([*args[:-1], str(src / "well*.tif")]) == 0  # glob; all done: skipped
    again = json.loads(capsys.readouterr().out)
    assert (again["files"], again["skipped"], again["done"]) == (3, 3, 0)


def test_denoise_batch_needs_a_model(tmp_path, capsys):
    write_image(tmp_path / "a.tif", _nuclei(32))
    write_image(tmp_path / "b.tif", _nuclei(32))
    code = main(["denoise", "--out", str(tmp_path / "out"), str(tmp_path / "a.tif"),
                 str(tmp_path / "b.tif")])
    assert code == 2 and "needs --model" in capsys.readouterr().err
