import numpy as np

from cellsight.io.tiff import read_image, write_image
from cellsight.plugin.hooks import (
    get_tiff_reader,
    write_image_layer,
    write_labels_layer,
)


def test_reader_only_claims_tiffs(tmp_path):
    assert get_tiff_reader(str(tmp_path / "a.png")) is None
    assert get_tiff_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.png")]) is None
    assert callable(get_tiff_reader(str(tmp_path / "a.tif")))


def test_reader_returns_layers_with_scale_and_type(tmp_path):
    write_image(tmp_path / "cells.tif", np.ones((3, 8, 8), np.uint16), axes="ZYX",
                scale=(2, 0.5, 0.5))
    write_image(tmp_path / "cells_mask.tif", np.ones((8, 8), np.uint16))
    layers = get_tiff_reader([str(tmp_path / "cells.tif"), str(tmp_path / "cells_mask.tif")])(
        [str(tmp_path / "cells.tif"), str(tmp_path / "cells_mask.tif")]
    )
    (img, img_meta, img_kind), (lbl, lbl_meta, lbl_kind) = layers
    assert img_kind == "image" and img_meta["name"] == "cells"
    assert img_meta["scale"] == [2, 0.5, 0.5]
    assert img_meta["metadata"]["axes"] == "ZYX"
    assert lbl_kind == "labels"


def test_reader_splits_channels(tmp_path):
    write_image(tmp_path / "two.tif", np.zeros((2, 8, 8), np.uint8), axes="CYX")
    (_, meta, _), = get_tiff_reader(str(tmp_path / "two.tif"))(str(tmp_path / "two.tif"))
    assert meta["channel_axis"] == 0
    assert len(meta["scale"]) == 2


def test_reader_opens_every_series_of_a_multi_series_tiff(tmp_path):
    import tifffile

    path = tmp_path / "plate.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((8, 8), np.uint8))
        tif.write(np.ones((4, 6), np.uint16))
    layers = get_tiff_reader(str(path))(str(path))
    assert [m["name"] for _, m, _ in layers] == ["plate [series 0]", "plate [series 1]"]
    assert [d.shape for d, _, _ in layers] == [(8, 8), (4, 6)]


def test_writers_roundtrip(tmp_path):
    data = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    out = write_image_layer(str(tmp_path / "i.tif"), data, {"scale": (0.5, 0.5)})
    assert out == [str(tmp_path / "i.tif")]
    assert read_image(out[0]).scale == (0.5, 0.5)
    labels = np.array([[0, 1], [2, 70000]])
    out = write_labels_layer(str(tmp_path / "l.tif"), labels, {"metadata": {"axes": "YX"}})
    got = read_image(out[0]).data
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, labels)


def test_ome_zarr_reader_gives_lazy_multiscale_layers(tmp_path):
    import dask.array as da

    from cellsight.io.omezarr import add_labels, write_ome_zarr
    from cellsight.plugin.hooks import get_ome_zarr_reader

    path = write_ome_zarr(tmp_path / "cells.ome.zarr", np.ones((2, 3, 40, 40), np.uint16),
                          "CZYX", scale=(1, 2, 0.5, 0.5), levels=2, version="0.5")
    add_labels(path, "nuclei", np.ones((3, 40, 40), np.uint16))
    assert get_ome_zarr_reader(str(tmp_path / "x.tif")) is None
    assert get_ome_zarr_reader(str(tmp_path / "missing.zarr")) is None
    reader = get_ome_zarr_reader(str(path))
    (img, img_meta, img_kind), (lbl, lbl_meta, lbl_kind) = reader(str(path))
    assert img_kind == "image" and img_meta["multiscale"] is True
    assert isinstance(img, list) and len(img) == 2 and isinstance(img[0], da.Array)
    assert img[0].shape == (2, 3, 40, 40) and img[1].shape == (2, 3, 20, 20)
    assert img_meta["channel_axis"] == 0 and img_meta["scale"] == [2, 0.5, 0.5]
    assert img_meta["metadata"] == {"axes": "ZYX", "path": str(path)}
    assert img_meta["name"] == "cells"
    assert lbl_kind == "labels" and lbl_meta["multiscale"] is True and len(lbl) == 2
    assert lbl_meta["name"] == "nuclei" and lbl_meta["scale"] == [2, 0.5, 0.5]
    (only, meta, kind), = reader(str(path / "labels" / "nuclei"))
    assert kind == "labels" and meta["metadata"]["axes"] == "ZYX"


def test_ome_zarr_writers_roundtrip(tmp_path):
    from cellsight.io.omezarr import read_ome_zarr
    from cellsight.plugin.hooks import write_ome_zarr_image_layer, write_ome_zarr_labels_layer

    data = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    out = write_ome_zarr_image_layer(str(tmp_path / "i.ome.zarr"), data,
                                     {"scale": (2, 0.5, 0.5), "metadata": {"axes": "ZYX"}})
    img = read_ome_zarr(out[0])
    assert img.axes == "ZYX" and img.scale == (2, 0.5, 0.5)
    np.testing.assert_array_equal(img.data.compute(), data)
    out = write_ome_zarr_labels_layer(str(tmp_path / "l.ome.zarr"), [data > 0.5, data[:, ::2]],
                                      {"scale": (1, 1, 1)})
    assert read_ome_zarr(out[0]).kind == "labels"


def test_tiff_units_and_axis_names_reach_the_layer(tmp_path):
    import tifffile

    from cellsight.plugin.hooks import read_tiffs

    ome = tmp_path / "cells.ome.tif"
    tifffile.imwrite(ome, np.zeros((3, 20, 30), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65,
                               "PhysicalSizeZ": 2.0})
    meta = read_tiffs(str(ome))[0][1]
    assert meta["scale"] == [2.0, 0.65, 0.65] and meta["axis_labels"] == ["z", "y", "x"]
    assert meta["units"] == ["micrometer"] * 3
    imagej = tmp_path / "ij.tif"
    tifffile.imwrite(imagej, np.zeros((20, 30), np.uint8), imagej=True,
                     resolution=(2.0, 2.0), metadata={"unit": "micron"})
    meta = read_tiffs(str(imagej))[0][1]
    assert meta["scale"] == [0.5, 0.5] and meta["units"] == ["micrometer"] * 2
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((20, 30), np.uint8))
    assert read_tiffs(str(plain))[0][1]["units"] == ["pixel", "pixel"]
