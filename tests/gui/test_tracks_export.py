"""Tracks leave napari: the Track dock's Export (CTC / GEFF / CSV) and the Tracks writers."""

import hashlib
from pathlib import Path

import geff
import napari
import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QMessageBox

from cellsight.cli.track import export as cli_export
from cellsight.gui import tracking_widget as tw
from cellsight.gui import tracks_export, workers
from cellsight.io.ctc import read_ctc
from cellsight.io.tracks_csv import read_tracks_csv

NAMES = {"ctc": "res", "geff": "tracks.geff", "csv": "tracks.csv"}


def _movie():
    """One cell divides at t=2 (ids change across frames), and a static second cell."""
    lab = np.zeros((4, 64, 64), np.uint16)
    lab[0, 20:30, 20:30] = 1
    lab[1, 20:30, 21:31] = 4
    lab[2, 14:21, 20:28] = 1
    lab[2, 30:37, 20:28] = 2
    lab[3, 13:20, 20:28] = 3
    lab[3, 31:38, 20:28] = 1
    lab[:, 50:56, 50:56] = 9
    return lab


@pytest.fixture
def edited(make_napari_viewer, qtbot):
    """Tracked, then one edit: the link into the lower daughter is broken."""
    viewer = make_napari_viewer()
    viewer.add_labels(_movie(), name="seg")
    widget = tw.TrackingWidget(viewer)
    assert not widget.export_panel.button.isEnabled()  # nothing to export yet
    widget.labels_box.value = viewer.layers["seg"]
    job = widget.start_tracking()
    qtbot.waitUntil(lambda: widget.job is None and widget.editor is not None, timeout=30_000)
    assert job.state == "done" and widget.export_panel.button.isEnabled()
    assert widget.editor.result.n_tracks == 4
    widget.select(widget.editor.result.detections.node_of(2, 2))
    widget.break_link()
    assert widget.editor.result.n_tracks == 3  # mother + upper daughter now one track
    return viewer, widget


def _answer_dialogs(monkeypatch, path: Path, replace: bool = False) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(tracks_export.QFileDialog, "getExistingDirectory",
                        lambda *a, **k: str(path))
    monkeypatch.setattr(tracks_export.QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(path), ""))

    def question(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.Yes if replace else QMessageBox.StandardButton.No

    monkeypatch.setattr(tracks_export.QMessageBox, "question", question)
    return asked


def _export(qtbot, widget, fmt: str) -> None:
    panel = widget.export_panel
    panel.format_box.setCurrentIndex(panel.format_box.findData(fmt))
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)


def _edges(track_id, t, parent_row) -> set:
    """Links as ``(track, frame) -> (track, frame)`` pairs, independent of node numbering."""
    key = list(zip(np.asarray(track_id).astype(int).tolist(),
                   np.asarray(t).astype(int).tolist(), strict=True))
    return {(key[int(p)], key[i]) for i, p in enumerate(parent_row) if p >= 0}


def _result_edges(result) -> set:
    alive = np.flatnonzero(result.node_track > 0)
    row = {int(n): i for i, n in enumerate(alive)}
    parents = [row.get(int(p), -1) for p in result.parent[alive]]
    return _edges(result.node_track[alive], result.detections.t[alive], parents)


def _read_back(path: Path, fmt: str) -> set:
    """The links in an exported file (CTC: label changes only, as CTC stores them)."""
    if fmt == "csv":
        table = read_tracks_csv(path)
        row = {int(n): i for i, n in enumerate(table["node_id"])}
        return _edges(table["track_id"], table["t"],
                      [row.get(int(p), -1) for p in table["parent_id"]])
    graph, _ = geff.read(str(path))
    nodes = list(graph.nodes)
    row = {n: i for i, n in enumerate(nodes)}
    parent = [-1] * len(nodes)
    for a, b in graph.edges:
        parent[row[b]] = row[a]
    return _edges([graph.nodes[n]["track_id"] for n in nodes],
                  [graph.nodes[n]["t"] for n in nodes], parent)


def _same_as_cli(path: Path, fmt: str, result, labels, tmp_path: Path) -> None:
    ref = tmp_path / "cli"
    ref.mkdir()
    cli_export(result, labels, ref, fmt)
    if fmt == "csv":
        assert path.read_text() == (ref / NAMES[fmt]).read_text()
    elif fmt == "geff":
        a, _ = geff.read(str(path))
        b, _ = geff.read(str(ref / NAMES[fmt]))
        assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        assert set(a.edges) == set(b.edges)
    else:
        mine, theirs = read_ctc(path, with_image=False), read_ctc(ref, with_image=False)
        assert np.array_equal(mine.labels, theirs.labels)
        assert (path / "res_track.txt").read_text() == (ref / "res_track.txt").read_text()


def test_new_controls_have_tooltips(make_napari_viewer):
    widget = tw.TrackingWidget(make_napari_viewer())
    panel = widget.export_panel
    assert panel.button.toolTip() and panel.format_box.toolTip()
    assert [panel.format_box.itemData(i) for i in range(3)] == ["ctc", "geff", "csv"]
    assert all(panel.format_box.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(3))


@pytest.mark.parametrize("fmt", ["ctc", "geff", "csv"])
def test_export_writes_the_edited_tracks(edited, qtbot, monkeypatch, tmp_path, fmt):
    viewer, widget = edited
    path = tmp_path / NAMES[fmt]
    if fmt == "ctc":
        path.mkdir()  # the dialog returns an existing (empty) folder
    asked = _answer_dialogs(monkeypatch, path)
    _export(qtbot, widget, fmt)
    assert not asked, "an empty target needs no confirmation"
    assert str(path) in widget.status.text()
    result = widget.editor.result
    if fmt == "ctc":
        data = read_ctc(path, with_image=False)
        assert len(data.table) == 3 and not data.table[:, 3].any()  # the division is gone
        assert set(np.unique(data.labels)) - {0} == set(data.table[:, 0])
    else:
        links = _read_back(path, fmt)
        assert links == _result_edges(result)
        starts = [b for _, b in links]
        assert len(starts) == len(set(starts)) and len({a for a, _ in links}) == len(links)
    _same_as_cli(path, fmt, result, widget.editor.input_labels, tmp_path)


@pytest.mark.parametrize("fmt", ["ctc", "csv"])
def test_existing_target_is_kept_unless_the_user_agrees(edited, qtbot, monkeypatch, tmp_path,
                                                        fmt):
    viewer, widget = edited
    path = tmp_path / NAMES[fmt]
    first = path / "res_track.txt" if fmt == "ctc" else path
    first.parent.mkdir(exist_ok=True)
    first.write_text("1 0 3 0\n")
    before = hashlib.sha256(first.read_bytes()).hexdigest()
    infos: list[str] = []
    monkeypatch.setattr(tracks_export, "show_info", infos.append)
    asked = _answer_dialogs(monkeypatch, path, replace=False)
    panel = widget.export_panel
    panel.format_box.setCurrentIndex(panel.format_box.findData(fmt))
    assert panel.start() is None and widget.job is None
    assert len(asked) == 1 and str(path) in asked[0]
    assert hashlib.sha256(first.read_bytes()).hexdigest() == before
    assert infos and "Nothing written" in infos[0]
    _answer_dialogs(monkeypatch, path, replace=True)
    _export(qtbot, widget, fmt)
    assert hashlib.sha256(first.read_bytes()).hexdigest() != before


def test_a_failed_export_is_a_notification_with_the_reason(edited, qtbot, monkeypatch,
                                                           tmp_path):
    viewer, widget = edited
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    errors: list[str] = []
    monkeypatch.setattr(workers, "show_error", errors.append)
    _answer_dialogs(monkeypatch, target, replace=True)
    _export(qtbot, widget, "ctc")
    assert errors and "not a folder" in errors[0]
    assert "Failed" in widget.status.text() and target.read_text() == "not a folder"
    assert widget.export_panel.button.isEnabled()


@pytest.mark.parametrize("name", ["edited.csv", "edited.geff"])
def test_tracks_layer_saves_through_napari(edited, tmp_path, name):
    """File > Save Selected Layer on the edited Tracks layer writes a real file."""
    viewer, widget = edited
    layer = viewer.layers["seg tracks"]
    viewer.layers.selection = {layer}
    written = viewer.layers.save(str(tmp_path / name), selected=True, plugin="cellsight")
    assert written == [str(tmp_path / name)]
    links = _read_back(tmp_path / name, "csv" if name.endswith(".csv") else "geff")
    assert links == _result_edges(widget.editor.result)
    if name.endswith(".geff"):  # a store is never replaced
        with pytest.raises(FileExistsError):
            napari.save_layers(str(tmp_path / name), [layer], plugin="cellsight")


def test_tracks_writer_keeps_parents_of_a_plain_layer(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.array([[1, 0, 5, 5], [1, 1, 5, 6], [2, 2, 3, 6], [3, 2, 8, 6]], float)
    layer = viewer.add_tracks(data, graph={2: [1], 3: [1]})
    assert napari.save_layers(str(tmp_path / "t.csv"), [layer], plugin="cellsight")
    table = read_tracks_csv(tmp_path / "t.csv")
    assert table["parent_id"].tolist() == [-1, 0, 1, 1]
    graph, _ = geff.read(str(napari.save_layers(str(tmp_path / "t.zarr"), [layer],
                                                plugin="cellsight")[0]))
    assert sorted(graph.edges) == [(0, 1), (1, 2), (1, 3)]
