"""Tracks out of cellsight: one export path for results and Tracks-layer data."""

import numpy as np
import pytest

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import napari_tracks, track
from cellsight.core.tracking.convert import node_table, to_networkx, tracks_layer_table
from cellsight.core.tracking.export import (
    export_tracks,
    target_exists,
    with_suffix,
    write_tracks_layer,
)
from cellsight.io.tracks_csv import read_tracks_csv


@pytest.fixture
def result(movie):
    return track(movie, config=TrackingConfig(solver="greedy"))


def test_layer_table_rebuilds_the_result_links(result):
    """Tracks-layer data + graph give back every link of the result (divisions too)."""
    data, graph, _ = napari_tracks(result.detections, result.parent, result.node_track)
    table = tracks_layer_table(data, graph)
    ref = node_table(result)
    # same cells in the same (track, time) order -> compare links as (t, track) pairs
    order = np.lexsort((ref["t"], ref["track_id"]))
    row_of = {int(n): i for i, n in enumerate(ref["node_id"][order])}
    ref_parent = [row_of.get(int(p), -1) for p in ref["parent_id"][order]]
    assert table["parent_id"].tolist() == ref_parent
    np.testing.assert_allclose(table["y"], ref["y"][order])
    assert sum(np.bincount(table["parent_id"][table["parent_id"] >= 0]) == 2) == 1


def test_layer_table_checks_its_input():
    with pytest.raises(ValueError, match="track_id, t"):
        tracks_layer_table(np.zeros((3, 3)))
    data = [[1, 0, 0, 0], [2, 0, 5, 5], [3, 1, 2, 2]]
    with pytest.raises(ValueError, match="merge"):
        tracks_layer_table(data, {3: [1, 2]})
    # a parent track missing from the data, or not earlier in time, gives no parent
    table = tracks_layer_table(data, {3: [7], 2: [3]})
    assert table["parent_id"].tolist() == [-1, -1, -1]
    assert list(tracks_layer_table([[1, 0, 1, 2, 3]])) == [
        "node_id", "t", "z", "y", "x", "track_id", "parent_id"]


@pytest.mark.parametrize("fmt", ["csv", "geff", "ctc"])
def test_export_never_replaces_unless_asked(tmp_path, result, movie, fmt):
    path = with_suffix(tmp_path / "out", fmt)
    assert not target_exists(path, fmt)
    export_tracks(result, movie, path, fmt)
    assert target_exists(path, fmt)
    with pytest.raises(FileExistsError):
        export_tracks(result, movie, path, fmt)
    export_tracks(result, movie, path, fmt, overwrite=True)


def test_ctc_target_with_other_files_only_is_free_and_keeps_them(tmp_path, result, movie):
    (tmp_path / "notes.txt").write_text("mine")
    assert not target_exists(tmp_path, "ctc")
    export_tracks(result, movie, tmp_path, "ctc")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "res_track.txt").exists()


def test_suffixes():
    assert with_suffix("a/b", "csv").name == "b.csv"
    assert with_suffix("a/b.zarr", "geff").name == "b.zarr"
    assert with_suffix("a/b", "geff").name == "b.geff"
    assert with_suffix("a/b", "ctc").name == "b"
    with pytest.raises(ValueError, match="Unknown"):
        with_suffix("a", "xls")


def test_layer_writer_csv_and_geff(tmp_path, result):
    import geff

    data, graph, _ = napari_tracks(result.detections, result.parent, result.node_track)
    csv = write_tracks_layer(tmp_path / "t.csv", data, graph, "csv")
    back = read_tracks_csv(csv)
    assert back["track_id"].tolist() == data[:, 0].tolist()
    store = write_tracks_layer(tmp_path / "t.geff", data, graph, "geff")
    g, _ = geff.read(str(store))
    ref = to_networkx(result)
    assert g.number_of_nodes() == ref.number_of_nodes()
    assert sorted(d for _, d in g.out_degree()) == sorted(d for _, d in ref.out_degree())
    with pytest.raises(FileExistsError):
        write_tracks_layer(store, data, graph, "geff")
