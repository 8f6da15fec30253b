import json

import numpy as np
import pytest

from cellsight.cli import main
from cellsight.io.ctc import read_ctc
from cellsight.io.tiff import write_labels
from cellsight.plugin.samples import sample_path


def test_track_sample_to_ctc(tmp_path, capsys):
    code = main(["track", str(sample_path("hela_timelapse_errseg")), "--out", str(tmp_path)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tracks"] > 10 and summary["solver"] == "ilp"
    assert sorted(p.name for p in tmp_path.glob("mask*.tif"))[:2] == ["mask000.tif", "mask001.tif"]
    data = read_ctc(tmp_path, with_image=False)
    assert data.labels.shape == (20, 256, 256)
    assert set(np.unique(data.labels)) - {0} == set(data.table[:, 0])


@pytest.mark.parametrize("fmt, name", [("geff", "tracks.geff"), ("csv", "tracks.csv")])
def test_track_folder_input_other_formats(tmp_path, fmt, name):
    frames = tmp_path / "seg"
    for t in range(3):
        lab = np.zeros((20, 20), np.uint16)
        lab[5:9, 5 + t:9 + t] = 3
        write_labels(frames / f"mask{t:03d}.tif", lab)
    out = tmp_path / "out"
    assert main(["track", str(frames), "--out", str(out), "--format", fmt,
                 "--solver", "greedy"]) == 0
    assert (out / name).exists()


def test_track_bad_input_is_a_user_error(tmp_path, capsys):
    write_labels(tmp_path / "one.tif", np.ones((8, 8), np.uint8))
    assert main(["track", str(tmp_path / "one.tif"), "--out", str(tmp_path / "o")]) == 2
    assert "time series" in capsys.readouterr().err
