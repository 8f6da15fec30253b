import json

import numpy as np
import pytest
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from cellsight.cli import main
from cellsight.io.omezarr import read_ome_zarr
from cellsight.io.tiff import write_image, write_labels


@pytest.mark.slow
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_convert_tiff_to_multiscale_ome_zarr(tmp_path, capsys, version):
    data = np.random.default_rng(0).integers(0, 4000, (3, 2, 300, 260), dtype=np.uint16)
    tif = write_image(tmp_path / "cells.ome.tif", data, axes="ZCYX", scale=(2, 1, 0.5, 0.5))
    out = tmp_path / "cells.ome.zarr"
    code = main(["convert", str(tif), "--out", str(out), "--chunks", "64",
                 "--version", version])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["axes"] == "CZYX" and summary["chunks"] == [1, 3, 64, 64]
    assert summary["levels"] == [[2, 3, 300, 260], [2, 3, 150, 130]]
    img = read_ome_zarr(out)
    assert img.scale == (1.0, 2.0, 0.5, 0.5) and img.units[-1] == "micrometer"
    np.testing.assert_array_equal(img.data.compute(), data.transpose(1, 0, 2, 3))
    node = next(iter(Reader(parse_url(str(out)))()))
    assert len(node.data) == 2 and node.data[0].chunksize == (1, 3, 64, 64)


def test_convert_labels_and_refuses_to_overwrite(tmp_path, capsys):
    labels = np.zeros((40, 40), np.uint16)
    labels[5:20, 5:20] = 9
    tif = write_labels(tmp_path / "mask.tif", labels)
    out = tmp_path / "mask.ome.zarr"
    assert main(["convert", str(tif), "--out", str(out), "--labels"]) == 0
    assert read_ome_zarr(out).kind == "labels"
    capsys.readouterr()
    assert main(["convert", str(tif), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert read_ome_zarr(out).kind == "labels"  # untouched
    assert main(["convert", str(tif), "--out", str(out), "--overwrite"]) == 0
    assert read_ome_zarr(out).kind == "image"


def test_convert_ome_zarr_to_other_version(tmp_path, capsys):
    tif = write_image(tmp_path / "a.tif", np.ones((2, 16, 16), np.uint8), axes="TYX")
    assert main(["convert", str(tif), "--out", str(tmp_path / "a.zarr")]) == 0
    assert main(["convert", str(tmp_path / "a.zarr"), "--out", str(tmp_path / "b.zarr"),
                 "--version", "0.5"]) == 0
    assert read_ome_zarr(tmp_path / "b.zarr").axes == "TYX"


def test_convert_errors(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert main(["convert", str(tmp_path / "folder"), "--out", str(tmp_path / "o.zarr")]) == 2
    assert "no NGFF metadata" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "no.tif"), "--out", str(tmp_path / "o.zarr")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o.zarr").exists()
