"""Dock widget "Batch": segment or denoise a folder (or glob pattern) of images.

Run plans one output per input (:func:`cellsight.core.blocks.batch.plan_outputs`) and runs
:func:`cellsight.core.blocks.batch.run_batch` in the dock's worker, on an
:class:`~cellsight.core.blocks.engine.Engine` started there (threads, or N worker
processes). Progress counts files; Stop keeps the finished outputs. The summary (one row
per file: status, objects, seconds, error) is shown in a table and written to
``summary.csv`` in the output folder. Running the same batch again skips the outputs that
exist, so a stopped or failed batch is finished by pressing Run again.
"""

from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cellsight.config.instances import InstancePredictConfig
from cellsight.gui.big_data import gui_engine
from cellsight.gui.toolkit import JobMixin, ModelChooser, button_grid, form

SEGMENT = "Segment nuclei / instances"
DENOISE = "Denoise (Noise2Void model)"
COLUMNS = ("file", "status", "objects", "seconds", "error")
#: text colour of the rows that need a look (the reason is in the row's tooltip)
STATUS_COLOURS = {"error": "#ff6b6b", "stopped": "#f0b400"}


def batch_job(task, source, diameter, pattern, out_dir, workers, overwrite, progress,
              should_stop):
    """Worker: load the model, plan the outputs and run the batch; returns the rows."""
    from cellsight.core.blocks.batch import expand_inputs, plan_outputs, run_batch
    from cellsight.core.blocks.files import denoise_file, segment_file

    if task == SEGMENT:
        from cellsight.core.segmentation.instance_model import InstanceModel

        model = InstanceModel.load(source)
        work, args = segment_file, (model, InstancePredictConfig(diameter=diameter), None)
    else:
        from cellsight.core.denoise import N2VModel

        work, args = denoise_file, (N2VModel.load(source),)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    items = plan_outputs(expand_inputs([pattern]), out_dir, ".tif", keep_tif_names=True)
    with gui_engine(workers) as engine:
        return run_batch(engine, work, items, *args, out_dir=out_dir, overwrite=overwrite,
                         progress=progress, should_stop=should_stop)


def _path_row(line: QLineEdit, button_text: str, pick, tip: str = "") -> QHBoxLayout:
    row = QHBoxLayout()
    button = QPushButton(button_text)
    button.setToolTip(tip)
    button.clicked.connect(pick)
    row.addWidget(line, 1)
    row.addWidget(button)
    return row


class BatchWidget(JobMixin, QWidget):
    """Run a model over every image of a folder or glob pattern, resumably."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.rows: list = []
        self.init_jobs(napari_viewer, "Choose the images, a model and an output folder.")
        self._build()

    # --- layout -----------------------------------------------------------------
    def _build(self) -> None:
        self.input_edit = QLineEdit()
        self.input_edit.setPlaceholderText("folder, or a pattern such as plate/*_DAPI.tif")
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("folder for the results and summary.csv")
        self.task_box = QComboBox()
        self.task_box.addItems([SEGMENT, DENOISE])
        self.task_box.currentTextChanged.connect(self._task_changed)
        self.segment_model = ModelChooser()
        self.denoise_model = ModelChooser(builtins={})
        self.diameter_box = self._diameter_box()
        self.workers_box = QSpinBox()
        self.workers_box.setRange(0, 256)
        self.workers_box.setSpecialValueText("0 (threads)")
        self.workers_box.setToolTip("0: run in this process's threads; N: a local cluster of "
                                    "N worker processes (files run in parallel).")
        self.overwrite_check = QCheckBox("Overwrite outputs that exist")
        self.overwrite_check.setToolTip("Off: outputs that exist are skipped, so running "
                                        "the same batch again finishes only the rest.")
        self.model_form = form(
            ("Images", _path_row(self.input_edit, "Folder…", self._pick_input,
                                           "Choose the folder of images to process.")),
            ("Task", self.task_box), ("Model", self.segment_model),
            ("N2V model", self.denoise_model), ("Diameter", self.diameter_box),
            ("Output folder", _path_row(self.output_edit, "Folder…", self._pick_output,
                                                  "Choose where results are written.")),
            ("Workers", self.workers_box), ("", self.overwrite_check),
        )
        grid, buttons = button_grid([("Run", self.start, "Process every image of the folder; "
                                      "images already done are skipped.")], columns=2)
        self.run_button = buttons["Run"]
        grid.addWidget(self.stop_button, 0, 1)
        self.table = self._table()
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(self.model_form)
        layout.addLayout(grid)
        for widget in (self.progress_bar, self.status, self.table, self.summary_label):
            layout.addWidget(widget)
        self.busy_disables(self.run_button, self.task_box, self.segment_model,
                           self.denoise_model, self.input_edit, self.output_edit)
        self._task_changed(self.task_box.currentText())

    def _diameter_box(self) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(0, 1000)
        box.setSuffix(" px")
        box.setSpecialValueText("model's own scale")
        title, tip = InstancePredictConfig.field_help("diameter")
        box.setToolTip(tip)
        return box

    def _table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels([c.capitalize() for c in COLUMNS])
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        table.setWordWrap(False)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.verticalHeader().setVisible(False)
        table.setMinimumHeight(160)
        return table

    def _task_changed(self, task: str) -> None:
        segment = task == SEGMENT
        for widget, show in ((self.segment_model, segment), (self.diameter_box, segment),
                             (self.denoise_model, not segment)):
            widget.setVisible(show)
            self.model_form.labelForField(widget).setVisible(show)

    def _pick_input(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images")
        if folder:
            self.input_edit.setText(folder)

    def _pick_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder")
        if folder:
            self.output_edit.setText(folder)

    # --- job --------------------------------------------------------------------------
    def model_source(self) -> str:
        """Built-in name or folder of the model for the chosen task."""
        chooser = self.segment_model if self.task_box.currentText() == SEGMENT else \
            self.denoise_model
        return chooser.source()

    def start(self):
        """Check the form (main thread) and run the batch in the worker."""
        pattern, out_dir = self.input_edit.text().strip(), self.output_edit.text().strip()
        source, task = self.model_source(), self.task_box.currentText()
        if not pattern or not out_dir or not source:
            show_error("Choose the images, a model and an output folder first.")
            return None
        self.table.setRowCount(0)
        self.summary_label.setText("")
        self._out_dir = out_dir
        return self.run_job(
            batch_job, task, source, self.diameter_box.value(), pattern, out_dir,
            self.workers_box.value(), self.overwrite_check.isChecked(),
            name="Batch", status="Running the batch …",
            on_result=self._show_rows, on_cancelled=self._show_rows,
        )

    # --- callbacks (main thread) --------------------------------------------------
    def _show_rows(self, rows) -> None:
        self.rows = list(rows or [])
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            values = (Path(row.file).name, row.status, row.objects, row.seconds, row.error)
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                item.setToolTip(row.file if c == 0 else row.error or str(value))
                if row.status in STATUS_COLOURS:
                    item.setForeground(QColor(STATUS_COLOURS[row.status]))
                self.table.setItem(r, c, item)
        counts = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        text = "Batch: " + ", ".join(f"{n} {s}" for s, n in counts.items())
        if counts.get("error"):
            text += " (reasons below)"
        self.status.setText(text)
        lines = [f"{Path(r.file).name}: {r.error}" for r in self.rows if r.error][:3]
        summary = Path(self._out_dir) / "summary.csv"
        if summary.exists():
            lines.append(f"Summary written to {summary}")
        self.summary_label.setText("\n".join(lines))
