import numpy as np
import pytest
import tifffile

from cellsight.io.tiff import ImageReadError, read_image, write_image, write_labels


def test_roundtrip_keeps_axes_and_scale(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 4, 16, 20), dtype=np.uint16)
    path = write_image(tmp_path / "img.tif", data, axes="TZYX", scale=(1, 2.5, 0.3, 0.3))
    img = read_image(path)
    np.testing.assert_array_equal(img.data, data)
    assert img.axes == "TZYX"
    assert img.scale == pytest.approx((1, 2.5, 0.3, 0.3))


def test_ome_roundtrip_keeps_physical_size(tmp_path):
    data = np.random.default_rng(1).random((5, 32, 24)).astype(np.float32)
    path = write_image(tmp_path / "img.ome.tif", data, axes="ZYX", scale=(2.0, 0.5, 0.25))
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
    img = read_image(path)
    np.testing.assert_array_equal(img.data, data)
    assert img.axes == "ZYX"
    assert img.scale == pytest.approx((2.0, 0.5, 0.25))


def test_imagej_file_scale_is_read(tmp_path):
    data = np.zeros((4, 10, 12), np.uint8)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"spacing": 1.5, "axes": "ZYX"})
    img = read_image(path)
    assert img.axes == "ZYX"
    assert img.scale == pytest.approx((1.5, 0.2, 0.2))


def test_labels_written_as_unsigned_integers(tmp_path):
    labels = np.zeros((8, 8), np.int64)
    labels[2:4, 2:4] = 300
    path = write_labels(tmp_path / "lbl.tif", labels)
    out = tifffile.imread(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, labels)


def test_labels_reject_fractional_and_negative(tmp_path):
    with pytest.raises(ValueError, match="whole numbers"):
        write_labels(tmp_path / "a.tif", np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        write_labels(tmp_path / "b.tif", np.full((4, 4), -1))
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_existing_file_untouched(tmp_path):
    target = tmp_path / "keep.tif"
    original = np.arange(64, dtype=np.uint8).reshape(8, 8)
    write_image(target, original)
    with pytest.raises(ValueError):
        write_image(target, np.zeros((8, 8)), axes="ZYX")
    np.testing.assert_array_equal(tifffile.imread(target), original)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_reads_lzw_compressed_ctc_file(shared_data):
    path = shared_data / "tracking" / "Fluo-N2DH-GOWT1" / "01" / "t000.tif"
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.LZW
    img = read_image(path)
    assert img.data.shape == (1024, 1024) and img.data.dtype == np.uint8
    assert img.axes == "YX"
    assert img.data.max() > 0


def test_missing_file_error_names_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.tif")


def test_not_a_tiff_error(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("this is not a tiff")
    with pytest.raises(ImageReadError, match="bad.tif"):
        read_image(bad)


def test_folder_error(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_write_rejects_wrong_axes_and_1d(tmp_path):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        write_image(tmp_path / "x.tif", np.zeros(5))
    with pytest.raises(ValueError, match="axes"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4)), axes="TYX")
