"""The Track dock's Export row: a format choice and a button that asks where to write.

The panel only asks (format, path, may it replace what is there); writing is the dock's
job (:meth:`cellsight.gui.tracking_widget.TrackingWidget.export_to`), which runs
:func:`cellsight.core.tracking.export.export_tracks` in its worker.
"""

from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QMessageBox, QPushButton, QWidget

from cellsight.core.tracking.export import FORMATS, target_exists, with_suffix

FORMAT_TIPS = {
    "ctc": "Cell Tracking Challenge result: one maskTTT.tif per frame (pixels = track "
           "label) and res_track.txt (label, first frame, last frame, parent).",
    "geff": "Graph exchange file format: a zarr store with one node per cell per frame "
            "(t, position, track id, label, area) and parent -> child edges.",
    "csv": "A table with one row per cell per frame: node_id, t, position, track_id, "
           "parent_id, label, area.",
}
FILTERS = {"geff": "GEFF store (*.geff *.zarr)", "csv": "CSV table (*.csv)"}


class TracksExportPanel(QWidget):
    """Format chooser + Export button; ``export(path, fmt, overwrite)`` does the writing.

    Parameters
    ----------
    export : callable
        Called with the chosen path, the format key and whether replacing is allowed.
    suggested_name : callable, optional
        Returns a file / folder name to propose (e.g. from the tracked layer's name).
    """

    def __init__(self, export: Callable[[Path, str, bool], object],
                 suggested_name: Callable[[], str] | None = None):
        super().__init__()
        self._export = export
        self._suggested_name = suggested_name or (lambda: "tracks")
        self._folder = Path.home()
        self.format_box = QComboBox()
        for key, (text, _) in FORMATS.items():
            self.format_box.addItem(text, key)
            self.format_box.setItemData(self.format_box.count() - 1, FORMAT_TIPS[key],
                                         Qt.ItemDataRole.ToolTipRole)
        self.format_box.setToolTip("File format of the export. CTC for the Cell Tracking "
                                   "Challenge tools, GEFF for graph tools (motile_tracker, "
                                   "TrackMate), CSV for spreadsheets and pandas.")
        self.button = QPushButton("Export tracks…")
        self.button.setToolTip("Write the current tracks, with your edits, to a file or "
                               "folder of the chosen format (asks before replacing one).")
        self.button.clicked.connect(self.start)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.format_box, 1)
        layout.addWidget(self.button)

    @property
    def fmt(self) -> str:
        """The chosen format key (``ctc``, ``geff`` or ``csv``)."""
        return self.format_box.currentData()

    def ask_path(self, fmt: str) -> Path | None:
        """Ask where to write (None when the user cancels)."""
        if fmt == "ctc":
            folder = QFileDialog.getExistingDirectory(
                self, "Folder for the CTC result (create an empty one, e.g. 01_RES)",
                str(self._folder))
            return Path(folder) if folder else None
        name = with_suffix(self._folder / self._suggested_name(), fmt)
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export tracks as {fmt.upper()}", str(name), FILTERS[fmt],
            options=QFileDialog.Option.DontConfirmOverwrite)  # asked below, for every format
        return with_suffix(path, fmt) if path else None

    def confirm_replace(self, path: Path, fmt: str) -> bool:
        """Ask whether ``path`` may be replaced."""
        what = "holds a CTC result" if fmt == "ctc" else "exists"
        answer = QMessageBox.question(
            self, "Replace?", f"{path} {what}. Replace it with the current tracks?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def start(self):
        """Ask for a path, check what is there, then hand over to ``export``."""
        fmt = self.fmt
        try:
            path = self.ask_path(fmt)
            if path is None:
                return None
            self._folder = path.parent
            overwrite = target_exists(path, fmt)
        except (OSError, ValueError) as exc:
            show_error(f"Export failed: {exc}")
            return None
        if overwrite and not self.confirm_replace(path, fmt):
            show_info(f"Nothing written: {path} already exists.")
            return None
        return self._export(path, fmt, overwrite)
