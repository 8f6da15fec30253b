"""The Batch dock: a folder of TIFFs (one broken) segmented, summary table, resume."""

import numpy as np

from cellsight.gui.batch_widget import DENOISE, SEGMENT, BatchWidget
from cellsight.io.tiff import write_image
from cellsight.plugin.samples import load_sample


def _folder(tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    image = load_sample("nuclei_2d")
    for k in range(3):
        write_image(folder / f"field{k}.tif", image[64 * k: 64 * k + 96, :96], axes="YX")
    (folder / "broken.tif").write_bytes(b"not a tiff")
    return folder


def _run(widget, qtbot):
    job = widget.start()
    assert job is not None
    qtbot.waitUntil(lambda: widget.job is None, timeout=120_000)
    return job


def _table(widget):
    return [[widget.table.item(r, c).text() for c in range(widget.table.columnCount())]
            for r in range(widget.table.rowCount())]


def test_batch_segments_a_folder_reports_errors_and_resumes(make_napari_viewer, qtbot,
                                                            tmp_path):
    viewer = make_napari_viewer()
    widget = BatchWidget(viewer)
    assert widget.task_box.currentText() == SEGMENT and widget.model_source() == "nuclei"
    widget.task_box.setCurrentText(DENOISE)
    assert widget.denoise_model.isHidden() is False and widget.segment_model.isHidden()
    widget.task_box.setCurrentText(SEGMENT)
    widget.input_edit.setText(str(_folder(tmp_path)))
    widget.output_edit.setText(str(tmp_path / "labels"))
    widget.diameter_box.setValue(24)

    job = _run(widget, qtbot)
    assert job.state == "done", widget.status.text()
    rows = {row[0]: row for row in _table(widget)}
    assert set(rows) == {"broken.tif", "field0.tif", "field1.tif", "field2.tif"}
    assert rows["broken.tif"][1] == "error" and rows["broken.tif"][4]
    assert all(rows[f"field{k}.tif"][1] == "done" and int(rows[f"field{k}.tif"][2]) > 0
               for k in range(3))
    assert (tmp_path / "labels" / "field0.tif").exists()
    assert str(tmp_path / "labels" / "summary.csv") in widget.summary_label.text()
    assert widget.progress_bar.value() == widget.progress_bar.maximum() == 4

    _run(widget, qtbot)  # the same batch again: finished files are skipped
    statuses = {row[0]: row[1] for row in _table(widget)}
    assert statuses == {"broken.tif": "error", "field0.tif": "skipped",
                        "field1.tif": "skipped", "field2.tif": "skipped"}
    assert "3 skipped" in widget.status.text()
    assert np.all([widget.run_button.isEnabled(), not widget.stop_button.isEnabled()])
