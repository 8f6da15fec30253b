import json

import numpy as np
import pytest
import tifffile

from cellsight.cli import main
from cellsight.io.tiff import read_image


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.2, (3, 40, 48)).astype(np.float32)
    image[:, 10:30, 12:36] += 1.0
    strokes = np.zeros(image.shape, np.uint8)
    strokes[0, 18:22, 16:32] = 2
    strokes[0, :3] = 1
    strokes[0, -3:] = 1
    tifffile.imwrite(tmp_path / "img.tif", image[0])
    tifffile.imwrite(tmp_path / "lbl.tif", strokes[0])
    tifffile.imwrite(tmp_path / "movie.tif", image, photometric="minisblack")
    return tmp_path


def _train(data, *extra):
    return main(
        [
            "train",
            "--task",
            "semantic",
            "--images",
            str(data / "img.tif"),
            "--labels",
            str(data / "lbl.tif"),
            "--out",
            str(data / "model"),
            "--steps",
            "6",
            "--patch-size",
            "32",
            "--depth",
            "2",
            "--base-channels",
            "4",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            *extra,
        ]
    )


@pytest.mark.slow
def test_train_then_segment(data, capsys):
    assert _train(data) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classes"] == 2 and summary["steps_done"] == 6
    assert {p.name for p in (data / "model").iterdir()} >= {
        "config.yaml",
        "weights.pt",
        "meta.json",
        "last.pt",
    }
    code = main(
        [
            "segment",
            "--mode",
            "semantic",
            "--model",
            str(data / "model"),
            "--out",
            str(data / "out.tif"),
            "--probabilities",
            str(data / "p.tif"),
            str(data / "img.tif"),
        ]
    )
    assert code == 0
    out = read_image(data / "out.tif").data
    assert out.shape == (40, 48) and out.dtype == np.uint8
    assert set(np.unique(out)) <= {1, 2}
    assert read_image(data / "p.tif").data.shape == (2, 40, 48)
    # test-time augmentation: other (averaged) probabilities, same shape
    args = ["segment", "--mode", "semantic", "--model", str(data / "model"), "--tta"]
    assert main([*args, "--out", str(data / "o2.tif"), "--probabilities", str(data / "p2.tif"),
                 str(data / "img.tif")]) == 0
    p_tta = read_image(data / "p2.tif").data
    assert p_tta.shape == (2, 40, 48)
    assert np.abs(p_tta - read_image(data / "p.tif").data).max() > 1e-5
    # a time series, frame by frame
    assert (
        main(
            [
                "segment",
                "--mode",
                "semantic",
                "--model",
                str(data / "model"),
                "--out",
                str(data / "movie_out.tif"),
                "--timeseries",
                str(data / "movie.tif"),
            ]
        )
        == 0
    )
    assert read_image(data / "movie_out.tif").data.shape == (3, 40, 48)
    # fine-tune / resume from the folder
    capsys.readouterr()
    assert _train(data, "--from", str(data / "model"), "--resume") == 0
    assert json.loads(capsys.readouterr().out)["steps_done"] == 6


@pytest.mark.slow
def test_user_errors_exit_2(data, capsys):
    assert _train(data) == 0
    capsys.readouterr()
    code = main(
        [
            "segment",
            "--mode",
            "semantic",
            "--model",
            str(data / "model"),
            "--out",
            str(data / "x.tif"),
            str(data / "movie.tif"),
        ]
    )
    assert code == 2
    assert "2D model on 3D data" in capsys.readouterr().err
    code = main(
        [
            "segment",
            "--mode",
            "semantic",
            "--model",
            str(data / "nowhere"),
            "--out",
            str(data / "x.tif"),
            str(data / "img.tif"),
        ]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(
        [
            "train",
            "--task",
            "semantic",
            "--images",
            str(data / "img.tif"),
            "--labels",
            str(data / "lbl.tif"),
            str(data / "lbl.tif"),
            "--out",
            str(data / "m2"),
        ]
    )
    assert code == 2 and "one --labels file per --images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["segment", "--mode", "bogus", "--model", "m", "--out", "o.tif", "i.tif"])
