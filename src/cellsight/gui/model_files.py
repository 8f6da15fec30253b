"""Save / load model-folder actions and job bookkeeping shared by the training docks.

A dock using :class:`ModelFilesMixin` has ``model``, ``job``, ``status`` (a QLabel)
and ``_set_running(bool)``, and defines its own ``load_model(folder)``.
"""

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog


class ModelFilesMixin:
    """``Save model…`` / ``Load model…`` buttons and the end-of-job handlers."""

    def _failed(self, exc) -> None:
        self.status.setText(f"Failed: {exc}")

    def _finished(self) -> None:
        self.job = None
        self._set_running(False)

    def save_model(self, folder) -> None:
        """Write the current model to ``folder`` (config.yaml, weights.pt, meta.json)."""
        if self.model is None:
            raise ValueError("There is no trained model to save.")
        self.model.save(folder)
        show_info(f"Model saved to {folder}")

    def _ask_save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save model into folder")
        if folder:
            self.save_model(folder)

    def _ask_load(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Load model folder")
        if folder:
            try:
                self.load_model(folder)
            except ValueError as exc:
                show_error(f"Cannot load model: {exc}")
