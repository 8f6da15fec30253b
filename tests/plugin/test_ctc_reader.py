import numpy as np
from npe2 import PluginManager

from cellsight.core.tracking import track
from cellsight.core.tracking.convert import to_ctc
from cellsight.io.ctc import write_ctc
from cellsight.io.tiff import write_image
from cellsight.plugin.ctc_reader import get_ctc_reader
from cellsight.plugin.hooks import get_tiff_reader


def _ctc_folder(tmp_path):
    lab = np.zeros((3, 24, 24), np.uint16)
    for t in range(3):
        lab[t, 4:10, 4 + t:10 + t] = 1
    folder = tmp_path / "01_RES"
    write_ctc(folder, *to_ctc(track(lab), lab))
    raw = tmp_path / "01"
    for t in range(3):
        write_image(raw / f"t{t:03d}.tif", (lab[t] * 50).astype(np.uint8))
    return folder


def test_ctc_folder_opens_as_image_labels_tracks(tmp_path):
    folder = _ctc_folder(tmp_path)
    reader = get_ctc_reader(str(folder))
    layers = reader(str(folder))
    assert [kind for _, _, kind in layers] == ["image", "labels", "tracks"]
    tracks, meta, _ = layers[2]
    assert tracks.shape == (3, 4) and set(tracks[:, 0]) == {1}
    assert "graph" in meta and "generation" in meta["features"]


def test_reader_contributions_do_not_collide(tmp_path):
    folder = _ctc_folder(tmp_path)
    tif = folder / "mask000.tif"
    assert get_ctc_reader(str(tif)) is None and get_ctc_reader(str(tmp_path)) is None
    assert get_tiff_reader(str(tif)) is not None
    pm = PluginManager()
    pm.discover()
    on_dir = {r.command for r in pm.iter_compatible_readers([str(folder)])}
    on_tif = {r.command for r in pm.iter_compatible_readers([str(tif)])}
    assert "cellsight.get_ctc_reader" in on_dir and "cellsight.get_tiff_reader" not in on_dir
    assert "cellsight.get_tiff_reader" in on_tif and "cellsight.get_ctc_reader" not in on_tif
