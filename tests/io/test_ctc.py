import numpy as np
import pytest

from cellsight.core.tracking import track
from cellsight.core.tracking.convert import node_table, result_from_ctc, to_ctc, to_networkx
from cellsight.io.ctc import frame_digits, is_ctc_folder, read_ctc, read_series, write_ctc
from cellsight.io.geff_export import write_geff
from cellsight.io.tracks_csv import read_tracks_csv, write_tracks_csv


def _gap_movie():
    lab = np.zeros((5, 32, 32), np.uint16)
    for t in (0, 1, 3, 4):  # missing in frame 2: a gap
        lab[t, 5:11, 5 + t:11 + t] = 1
    return lab


def test_ctc_round_trip_splits_gaps(tmp_path):
    lab = _gap_movie()
    result = track(lab)
    masks, table = to_ctc(result, lab)
    assert table.tolist() == [[1, 0, 1, 0], [2, 3, 4, 1]]  # gap -> new label, parent = old
    write_ctc(tmp_path, masks, table)
    assert (tmp_path / "mask000.tif").exists() and (tmp_path / "res_track.txt").exists()
    assert is_ctc_folder(tmp_path)
    back = read_ctc(tmp_path)
    assert np.array_equal(back.labels, masks) and back.table.tolist() == table.tolist()
    again = result_from_ctc(back.labels, back.table)
    assert again.n_tracks == 1 and len(again.links) == 3


@pytest.mark.slow
def test_reads_ground_truth_folder(shared_data):
    gt = read_ctc(shared_data / "tracking" / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA")
    assert gt.labels.shape == (92, 1024, 1024)
    assert gt.image is not None and gt.image.shape == gt.labels.shape
    assert len(gt.table) == 27 and (gt.table[:, 3] > 0).sum() >= 2


def test_frame_digits_and_bad_tables(tmp_path):
    assert frame_digits(1000) == 3 and frame_digits(1001) == 4
    masks = np.zeros((1001, 2, 2), np.uint16)
    masks[:, 0, 0] = 1
    write_ctc(tmp_path / "long", masks, np.array([[1, 0, 1000, 0]]))
    assert (tmp_path / "long" / "mask1000.tif").exists()
    assert (tmp_path / "long" / "mask0000.tif").exists()
    (tmp_path / "bad").mkdir()
    write_ctc(tmp_path / "bad", masks[:2], np.array([[1, 0, 1, 0]]))
    (tmp_path / "bad" / "res_track.txt").write_text("1 0 x 0\n")
    with pytest.raises(ValueError, match="line 1"):
        read_ctc(tmp_path / "bad")
    with pytest.raises(ValueError, match="not a CTC tracking folder"):
        read_ctc(tmp_path)


def test_read_series_from_folder_and_stack(tmp_path):
    lab = _gap_movie()
    masks, table = to_ctc(track(lab), lab)
    write_ctc(tmp_path, masks, table)
    assert np.array_equal(read_series(tmp_path), masks)
    with pytest.raises(FileNotFoundError):
        read_series(tmp_path / "missing.tif")


def test_geff_and_csv_exports(tmp_path):
    import geff

    lab = _gap_movie()
    result = track(lab)
    store = write_geff(tmp_path / "t.geff", to_networkx(result), ["t", "y", "x"])
    graph, meta = geff.read(str(store))
    assert graph.number_of_nodes() == 4 and graph.number_of_edges() == 3
    assert [a.name for a in meta.axes] == ["t", "y", "x"]
    table = node_table(result)
    write_tracks_csv(tmp_path / "t.csv", table)
    back = read_tracks_csv(tmp_path / "t.csv")
    assert list(back) == list(table) and np.allclose(back["x"], table["x"], atol=1e-3)


def _folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_ctc_folder_is_written_as_a_unit(tmp_path, monkeypatch):
    import cellsight.io.ctc as ctc

    lab = _gap_movie()
    masks, table = to_ctc(track(lab), lab)
    out = tmp_path / "res"
    write_ctc(out, masks, table)
    (out / "tracks.csv").write_text("mine")  # another export beside the CTC files
    before = _folder_bytes(out)

    def crash(path, table):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ctc, "write_track_table", crash)
    with pytest.raises(OSError, match="space"):
        write_ctc(out, masks[:2], table[:1])
    assert _folder_bytes(out) == before  # the earlier result, whole
    assert [p.name for p in tmp_path.iterdir()] == ["res"]
    monkeypatch.undo()
    write_ctc(out, masks[:2], np.array([[1, 0, 1, 0]]))  # a shorter run: no stale frames
    assert sorted(p.name for p in out.iterdir()) == [
        "mask000.tif", "mask001.tif", "res_track.txt", "tracks.csv"]
    assert (out / "tracks.csv").read_text() == "mine"
    with pytest.raises(FileExistsError):
        write_ctc(out, masks, table, overwrite=False)
