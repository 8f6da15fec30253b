import json

import dask.array as da
import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from cellsight.io.omezarr import (
    ImageReadError,
    add_labels,
    create_output,
    default_chunks,
    finalize_output,
    is_ome_zarr,
    open_lazy,
    partial_path,
    read_ome_zarr,
    to_ngff_order,
    write_ome_zarr,
)
from cellsight.io.tiff import write_image

RNG = np.random.default_rng(0)

CASES = {
    "2d": ("YX", (300, 280), (0.5, 0.5)),
    "3d": ("ZYX", (3, 300, 270), (2.0, 0.25, 0.25)),
    "tcyx": ("TCYX", (2, 2, 270, 300), (5.0, 1.0, 0.5, 0.5)),
}


def _ngff_nodes(path):
    return list(Reader(parse_url(str(path)))())


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_read_by_ome_zarr_py(tmp_path, case, version):
    axes, shape, scale = CASES[case]
    data = RNG.integers(0, 60000, shape, dtype=np.uint16)
    out = write_ome_zarr(tmp_path / "img.ome.zarr", data, axes, scale=scale,
                         units=("second",) * (axes[0] == "T") + (None,) * ("C" in axes)
                         + ("micrometer",) * (len(axes) - (axes[0] == "T") - ("C" in axes)),
                         chunks=default_chunks(axes, shape, 128), version=version)
    zarr_format = 2 if version == "0.4" else 3
    assert zarr.open_group(str(out), mode="r").metadata.zarr_format == zarr_format
    node = _ngff_nodes(out)[0]
    assert [a["name"] for a in node.metadata["axes"]] == list(axes.lower())
    np.testing.assert_array_equal(np.asarray(node.data[0]), data)
    assert len(node.data) == 2  # 300 px -> 150 px: two levels
    assert node.data[1].shape[-2:] == tuple((n + 1) // 2 for n in shape[-2:])
    transforms = node.metadata["coordinateTransformations"]
    assert transforms[0][0]["scale"] == list(scale)
    assert transforms[1][0]["scale"][-1] == 2 * scale[-1]

    img = read_ome_zarr(out)
    assert isinstance(img.data, da.Array)
    assert (img.axes, img.scale) == (axes, scale)
    assert img.units[-1] == "micrometer" and img.kind == "image" and img.name == "img"
    np.testing.assert_array_equal(img.data.compute(), data)
    assert len(img.levels) == 2 and img.levels[1].dtype == np.uint16
    low = read_ome_zarr(out, level=1)
    assert low.scale[-1] == 2 * scale[-1] and low.data.shape == img.levels[1].shape


def test_image_pyramid_is_a_2x2_mean():
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    import tempfile
    from pathlib import Path

    out = write_ome_zarr(Path(tempfile.mkdtemp()) / "m.zarr", data, "YX", levels=2)
    small = read_ome_zarr(out).levels[1].compute()
    np.testing.assert_allclose(small, data.reshape(2, 2, 2, 2).mean(axis=(1, 3)))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_have_image_label_metadata_and_original_ids(tmp_path, version):
    labels = RNG.choice(np.array([0, 3, 70000], np.uint32), size=(2, 300, 300))
    out = write_ome_zarr(tmp_path / "seg.ome.zarr", labels, "ZYX", kind="labels",
                         version=version)
    node = _ngff_nodes(out)[0]
    attrs = zarr.open_group(str(out), mode="r").attrs.asdict()
    attrs = attrs.get("ome", attrs)
    assert "image-label" in attrs
    assert len(node.data) == 2
    assert set(np.unique(np.asarray(node.data[1]))) <= {0, 3, 70000}
    np.testing.assert_array_equal(np.asarray(node.data[1]), labels[:, ::2, ::2])
    assert read_ome_zarr(out).kind == "labels"


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_add_labels_into_an_existing_image(tmp_path, version):
    image = RNG.random((2, 40, 36)).astype(np.float32)
    out = write_ome_zarr(tmp_path / "img.zarr", image, "CYX", scale=(1, 0.5, 0.5), levels=2,
                         version=version)
    labels = (image[0] > 0.5).astype(np.uint16) * 7
    where = add_labels(out, "cells", labels)
    assert where == out / "labels" / "cells"
    add_labels(out, "more", labels[None])  # with a C axis of size 1, too
    got = read_ome_zarr(where)
    assert got.axes == "YX" and got.scale == (0.5, 0.5) and len(got.levels) == 2
    np.testing.assert_array_equal(got.data.compute(), labels)
    nodes = _ngff_nodes(out)
    names = [n.metadata.get("name") for n in nodes]
    assert "cells" in names and "more" in names
    with pytest.raises(FileExistsError, match="--overwrite"):
        add_labels(out, "cells", labels)
    add_labels(out, "cells", labels * 0 + 1, overwrite=True)
    attrs = zarr.open_group(str(out / "labels"), mode="r").attrs.asdict()
    assert sorted(attrs.get("ome", attrs)["labels"]) == ["cells", "more"]
    assert read_ome_zarr(where).data.max().compute() == 1
    with pytest.raises(ValueError, match="do not match"):
        add_labels(out, "bad", np.zeros((5, 5), np.uint16))


def test_no_overwrite_without_the_flag(tmp_path):
    out = write_ome_zarr(tmp_path / "a.ome.zarr", np.ones((8, 8), np.uint8), "YX")
    with pytest.raises(FileExistsError, match="a.ome.zarr.*--overwrite"):
        write_ome_zarr(out, np.zeros((8, 8), np.uint8), "YX")
    assert read_ome_zarr(out).data.compute().min() == 1
    assert not partial_path(out).exists()
    write_ome_zarr(out, np.zeros((4, 4), np.uint8), "YX", overwrite=True, version="0.5")
    assert read_ome_zarr(out).data.shape == (4, 4)
    assert zarr.open_group(str(out), mode="r").metadata.zarr_format == 3


def test_partial_output_of_a_crash_is_readable_and_not_the_output(tmp_path):
    out = tmp_path / "run.ome.zarr"
    arr = create_output(out, (64, 64), np.uint16, (32, 32), "YX", scale=(0.3, 0.3),
                        kind="labels")
    arr[:32, :32] = 5  # one block done, then the run dies
    partial = partial_path(out)
    assert partial.name == "run.ome.zarr.partial" and is_ome_zarr(partial)
    got = read_ome_zarr(partial)
    assert got.scale == (0.3, 0.3)
    np.testing.assert_array_equal(np.unique(got.data.compute()), [0, 5])
    assert _ngff_nodes(partial)[0].data[0].shape == (64, 64)
    with pytest.raises(ImageReadError, match="unfinished output"):
        read_ome_zarr(out)
    assert finalize_output(out) == out and not partial.exists()
    assert read_ome_zarr(out).data[0, 0].compute() == 5


def test_finalize_replaces_only_with_overwrite(tmp_path):
    out = write_ome_zarr(tmp_path / "x.zarr", np.ones((8, 8), np.uint8), "YX")
    with pytest.raises(FileExistsError):
        create_output(out, (8, 8), np.uint8, (8, 8), "YX")
    create_output(out, (8, 8), np.uint8, (8, 8), "YX", overwrite=True)
    assert read_ome_zarr(out).data.compute().max() == 1  # untouched until finalized
    finalize_output(out)
    assert read_ome_zarr(out).data.compute().max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]
    with pytest.raises(FileNotFoundError, match="create_output"):
        finalize_output(out)


def test_create_output_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="NGFF order"):
        create_output(tmp_path / "a.zarr", (2, 3, 8, 8), "uint8", (1, 1, 8, 8), "ZCYX")
    with pytest.raises(ValueError, match="integer"):
        create_output(tmp_path / "a.zarr", (8, 8), "float32", (8, 8), "YX", kind="labels")
    with pytest.raises(ValueError, match="version"):
        create_output(tmp_path / "a.zarr", (8, 8), "uint8", (8, 8), "YX", version="0.3")


def test_errors_for_missing_path_and_non_zarr_folder(tmp_path):
    with pytest.raises(ImageReadError, match="no such folder"):
        read_ome_zarr(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hi")
    with pytest.raises(ImageReadError, match="plain.*no NGFF metadata"):
        read_ome_zarr(tmp_path / "plain")
    assert not is_ome_zarr(tmp_path / "plain") and is_ome_zarr(tmp_path / "x.ome.zarr")
    with pytest.raises(ImageReadError, match="not a TIFF or OME-Zarr"):
        open_lazy(tmp_path / "plain" / "notes.txt")
    with pytest.raises(ImageReadError, match="no such file"):
        open_lazy(tmp_path / "missing.tif")


def test_labels_folder_names_its_label_images(tmp_path):
    out = write_ome_zarr(tmp_path / "i.zarr", np.zeros((8, 8), np.uint8), "YX")
    add_labels(out, "nuclei", np.zeros((8, 8), np.uint8))
    with pytest.raises(ImageReadError, match="labels/nuclei"):
        read_ome_zarr(out / "labels")


def test_open_lazy_tiff_is_dask_with_axes_and_scale(tmp_path):
    data = RNG.integers(0, 255, (3, 2, 16, 20), dtype=np.uint8)
    tif = write_image(tmp_path / "cells.ome.tif", data, axes="ZCYX", scale=(2, 1, 0.5, 0.5))
    img = open_lazy(tif)
    assert isinstance(img.data, da.Array)
    assert img.data.npartitions > 1  # per-plane chunks, nothing read yet
    assert img.axes == "CZYX" and img.scale == (1.0, 2.0, 0.5, 0.5)
    assert img.units == (None, "micrometer", "micrometer", "micrometer")
    assert img.name == "cells"
    np.testing.assert_array_equal(img.data.compute(), data.transpose(1, 0, 2, 3))


def test_open_lazy_imagej_tiff_units(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((4, 8, 8), np.uint16), imagej=True,
                     resolution=(2, 2), metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    img = open_lazy(tmp_path / "ij.tif")
    assert img.axes == "ZYX" and img.scale == (3.0, 0.5, 0.5)
    assert img.units == ("micrometer",) * 3


def test_open_lazy_ome_zarr(tmp_path):
    out = write_ome_zarr(tmp_path / "v.ome.zarr", np.ones((2, 8, 8), np.uint8), "ZYX",
                         version="0.5")
    assert open_lazy(out).axes == "ZYX"


def test_to_ngff_order_rgb_and_unknown_axes():
    data, axes, _, _ = to_ngff_order(np.zeros((1, 8, 9, 3)), "QYXS")
    assert data.shape == (3, 8, 9) and axes == "CYX"
    with pytest.raises(ValueError, match="not one of TCZYX"):
        to_ngff_order(np.zeros((2, 8, 9)), "QYX")


def test_metadata_files_are_plain_json(tmp_path):
    v4 = write_ome_zarr(tmp_path / "a.zarr", np.zeros((8, 8), np.uint8), "YX")
    v5 = write_ome_zarr(tmp_path / "b.zarr", np.zeros((8, 8), np.uint8), "YX", version="0.5")
    ms4 = json.loads((v4 / ".zattrs").read_text())["multiscales"][0]
    assert ms4["version"] == "0.4"
    ome5 = json.loads((v5 / "zarr.json").read_text())["attributes"]["ome"]
    assert ome5["version"] == "0.5" and ome5["multiscales"][0]["axes"][0]["type"] == "space"
