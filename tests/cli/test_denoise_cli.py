import numpy as np
import pytest

from cellsight.cli import main
from cellsight.io.tiff import read_image, write_image

FAST = ["--steps", "3", "--patch-size", "16", "--batch-size", "2"]


def _noisy(path, shape, axes):
    data = np.random.default_rng(0).poisson(40, size=shape).astype(np.uint16)
    write_image(path, data, axes=axes)
    return data


@pytest.mark.slow
def test_train_denoise_save_then_apply(tmp_path, capsys):
    data = _noisy(tmp_path / "in.tif", (48, 40), "YX")
    out, model = tmp_path / "out.tif", tmp_path / "model"
    code = main(["denoise", str(tmp_path / "in.tif"), "--out", str(out), *FAST,
                 "--variant", "n2v2", "--save-model", str(model)])
    assert code == 0, capsys.readouterr().err
    result = read_image(out)
    assert result.data.shape == data.shape and result.data.dtype == np.float32
    assert abs(result.data.mean() - data.mean()) < 10  # in the input's units
    assert {p.name for p in model.iterdir()} >= {"config.yaml", "weights.pt", "meta.json",
                                                 "checkpoints"}
    assert (model / "checkpoints" / "last" / "weights.pt").is_file()
    # apply the saved model to another image, without training
    _noisy(tmp_path / "other.tif", (32, 56), "YX")
    code = main(["denoise", str(tmp_path / "other.tif"), "--out", str(tmp_path / "o2.tif"),
                 "--model", str(model)])
    assert code == 0
    assert read_image(tmp_path / "o2.tif").data.shape == (32, 56)


@pytest.mark.slow
def test_time_series_keeps_shape_and_axes(tmp_path):
    data = _noisy(tmp_path / "movie.tif", (3, 32, 32), "TYX")
    assert main(["denoise", str(tmp_path / "movie.tif"), "--out", str(tmp_path / "o.tif"),
                 *FAST]) == 0
    result = read_image(tmp_path / "o.tif")
    assert result.data.shape == data.shape and result.axes == "TYX"


def test_user_errors_exit_with_code_2(tmp_path, capsys):
    _noisy(tmp_path / "in.tif", (32, 32), "YX")
    assert main(["denoise", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.tif")]) == 2
    assert "no such file" in capsys.readouterr().err
    code = main(["denoise", str(tmp_path / "in.tif"), "--out", str(tmp_path / "o.tif"),
                 "--model", str(tmp_path / "m"), "--steps", "5"])
    assert code == 2 and "--steps" in capsys.readouterr().err
    code = main(["denoise", str(tmp_path / "in.tif"), "--out", str(tmp_path / "o.tif"),
                 "--model", str(tmp_path / "nomodel")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
