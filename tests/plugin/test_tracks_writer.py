"""npe2 writers for Tracks layers (plain LayerData, no viewer)."""

import numpy as np
import pytest

from cellsight.io.tracks_csv import read_tracks_csv
from cellsight.plugin.hooks import write_tracks_csv_layer, write_tracks_geff_layer

DATA = np.array([[1, 0, 2, 5, 5], [1, 1, 2, 5, 6], [2, 2, 2, 3, 6], [3, 2, 3, 8, 6]], float)
META = {"graph": {2: [1], 3: [1]}, "scale": [1, 1, 1, 1]}


def test_csv_writer_keeps_divisions_in_3d(tmp_path):
    out = write_tracks_csv_layer(str(tmp_path / "t.csv"), DATA, META)
    table = read_tracks_csv(out[0])
    assert list(table) == ["node_id", "t", "z", "y", "x", "track_id", "parent_id"]
    assert table["parent_id"].tolist() == [-1, 0, 1, 1]
    assert table["z"].tolist() == [2, 2, 2, 3]
    # napari's save dialog has asked before replacing a file
    assert write_tracks_csv_layer(str(tmp_path / "t.csv"), DATA[:2], {"graph": {}}) == out
    assert len(read_tracks_csv(out[0])["t"]) == 2


def test_geff_writer_never_replaces_a_store(tmp_path):
    import geff

    out = write_tracks_geff_layer(str(tmp_path / "t.geff"), DATA, META)
    graph, _ = geff.read(out[0])
    assert sorted(graph.edges) == [(0, 1), (1, 2), (1, 3)]
    assert graph.nodes[3]["z"] == 3
    with pytest.raises(FileExistsError):
        write_tracks_geff_layer(out[0], DATA, META)
