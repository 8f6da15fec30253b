"""Choosing, loading and saving models in the docks.

:class:`ModelChooser` lists the built-in segmentation models
(:data:`cellsight.models.SEGMENTATION_MODELS`),
the folders used so far, and items that ask the user for a model. Those items are
:data:`PICKERS`: text -> ``picker(parent)`` returning a source or None; a bioimage.io
package picker slots in there without touching the docks.
"""

from collections.abc import Callable
from pathlib import Path

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QMessageBox

from cellsight.models import SEGMENTATION_MODELS

FOLDER_ITEM = "a folder…"
PACKAGE_ITEM = "a bioimage.io package (.zip)…"
BUILTIN_SUFFIX = " (built-in)"


def pick_folder(parent) -> str | None:
    """Ask for a model folder (``config.yaml`` + ...) or a package folder (``rdf.yaml``)."""
    return QFileDialog.getExistingDirectory(parent, "Model folder") or None


def pick_package(parent) -> str | None:
    """Ask for a bioimage.io model package (zip)."""
    path, _ = QFileDialog.getOpenFileName(parent, "bioimage.io model package", "",
                                          "Model packages (*.zip);;All files (*)")
    return path or None


#: items of every chooser that ask the user for a model, in order
PICKERS: dict[str, Callable] = {FOLDER_ITEM: pick_folder, PACKAGE_ITEM: pick_package}


def model_ndim(source: str, default: int = 2) -> int:
    """Spatial dimensions of the model ``source`` (built-in name, folder or package)."""
    from cellsight.io.bmz.read import is_package
    from cellsight.io.model_folder import read_config
    from cellsight.models import resolve_model

    try:
        if source and is_package(source):
            from cellsight.io.bmz.read import open_package

            axes = open_package(source).descr.inputs[0].axes
            return sum(a.type == "space" for a in axes)
        return int(read_config(resolve_model(source))["unet"]["ndim"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def model_post(source: str):
    """The watershed settings saved with an instance model folder (None otherwise).

    Read from its ``config.yaml`` only (no weights), so the dock can show a model's own
    thresholds before it runs.
    """
    from cellsight.config.instances import InstancePostConfig
    from cellsight.io.model_folder import read_config
    from cellsight.models import resolve_model

    try:
        config = read_config(resolve_model(source))
        if config.get("task") != "instance" or "postprocessing" not in config:
            return None
        return InstancePostConfig.model_validate(config["postprocessing"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def foreign_package(source) -> bool:
    """True for a bioimage.io package that cellsight did not write."""
    from cellsight.io.bmz.read import is_package, open_package

    try:
        return bool(source) and is_package(source) and not open_package(
            source).cellsight.get("task")
    except ValueError:
        return False


def ask_trust(parent, file: str, sha256: str) -> bool:
    """Ask whether the package's architecture file (Python code) may run."""
    answer = QMessageBox.question(
        parent, "Run code from a model package?",
        f"This bioimage.io package builds its network with Python code from its file "
        f"{file}\n(sha256 {sha256}).\n\nThat code would run on this computer with your "
        "rights. Allow it only if you trust where the package comes from.\n\nRun it?",
        QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes


def load_package_asking(parent, source, kinds: tuple[str, ...]):
    """Load a package from another tool; ask before its code runs (None: the user said No).

    Raises
    ------
    ValueError
        If it cannot be loaded, or its output is not one of ``kinds``.
    """
    from cellsight.core.bmz.run import load_package, output_kind
    from cellsight.io.bmz.read import UntrustedCode, open_package

    kind = output_kind(open_package(source))
    if kind not in kinds:
        raise ValueError(f"{Path(str(source)).name} outputs {kind} data; this dock runs "
                         f"packages with {' or '.join(kinds)} output.")
    try:
        return load_package(source, prefer_cellsight=False)
    except UntrustedCode as exc:
        if not ask_trust(parent, exc.file, exc.sha256):
            return None
        return load_package(source, trust=True, prefer_cellsight=False)


def export_job(model, path, progress, should_stop):
    """Worker: write ``model`` as a bioimage.io package at ``path``."""
    from cellsight.core.bmz.export import export_package

    return export_package(model, path)


def ask_export_path(parent) -> str | None:
    """Ask where to write a package; refuse an existing file (never overwritten)."""
    path, _ = QFileDialog.getSaveFileName(parent, "Export bioimage.io package", "",
                                          "Model packages (*.zip)")
    if not path:
        return None
    if not path.lower().endswith(".zip"):
        path += ".zip"
    if Path(path).exists():
        show_error(f"{path} exists; packages are never overwritten: choose a new name.")
        return None
    return path


def start_export(dock, model) -> object:
    """Export ``model`` in a worker of ``dock`` (a JobMixin) after asking for the file."""
    from cellsight.core.bmz.run import PackageModel

    if model is None:
        show_error("There is no model to export: train or load one first.")
        return None
    if isinstance(model, PackageModel):
        show_error(f"This model is already a bioimage.io package (from another tool): "
                   f"{model.package.path}.")
        return None
    path = ask_export_path(dock)
    if path is None:
        return None
    return dock.run_job(export_job, model, path, name="Export package",
                        status=f"Writing the package {path} …",
                        on_result=lambda p: (dock.status.setText(f"Package written to {p}."),
                                             show_info(f"Package written to {p}")))


class ModelChooser(QComboBox):
    """Choose a model: built-in, a folder used before, or a new one from a picker.

    Parameters
    ----------
    builtins : dict
        ``{name: description}`` of the built-in models offered (may be empty).
    none_text : str, optional
        A first item meaning "no file" (e.g. the model trained in this session).
    pickers : dict, optional
        Items asking for a model (default :data:`PICKERS`).

    Attributes
    ----------
    chosen : Signal(str)
        The user picked a model (its source); not emitted by :meth:`set_source`.
    """

    chosen = Signal(str)

    def __init__(self, builtins=SEGMENTATION_MODELS, none_text: str | None = None, pickers=None):
        super().__init__()
        self._none_text = none_text
        self._builtins = dict(builtins)
        self._pickers = dict(PICKERS if pickers is None else pickers)
        self.addItems(([none_text] if none_text else [])
                      + [name + BUILTIN_SUFFIX for name in self._builtins] + list(self._pickers))
        self.setToolTip("\n".join(f"{k}: {v}" for k, v in self._builtins.items()))
        self._previous = 0
        self.activated.connect(self._activated)

    def source(self) -> str:
        """Built-in name or folder of the chosen model ("" for none)."""
        text = self.currentText()
        if text == self._none_text or text in self._pickers:
            return ""
        return text.removesuffix(BUILTIN_SUFFIX) if text.endswith(BUILTIN_SUFFIX) else text

    def set_source(self, source) -> None:
        """Select ``source`` (built-in name or folder), adding a folder to the list."""
        source = str(source)
        text = source + BUILTIN_SUFFIX if source in self._builtins else source
        if self.findText(text) < 0:
            self.insertItem(self.count() - len(self._pickers), text)
        self.setCurrentIndex(self.findText(text))
        self._previous = self.currentIndex()

    def add_source(self, source) -> None:
        """List ``source`` (a folder) without choosing it."""
        text = str(source)
        if self.findText(text) < 0:
            current = self.currentText()
            self.insertItem(self.count() - len(self._pickers), text)
            self.setCurrentIndex(self.findText(current))
            self._previous = self.currentIndex()

    def select_none(self) -> None:
        """Select the ``none_text`` item."""
        if self._none_text:
            self.setCurrentIndex(0)
            self._previous = 0

    def _activated(self, index: int) -> None:
        picker = self._pickers.get(self.itemText(index))
        if picker is None:
            self._previous = index
            self.chosen.emit(self.source())
            return
        source = picker(self)
        if not source:
            self.setCurrentIndex(self._previous)
            return
        self.set_source(source)
        self.chosen.emit(str(source))


class ModelFilesMixin:
    """Save the dock's ``model``; load what the dock's :class:`ModelChooser` picks.

    The dock defines ``model`` and ``load_model(folder)``.
    """

    def save_model(self, folder) -> None:
        """Write the current model to ``folder`` (config.yaml, weights.pt, meta.json)."""
        if self.model is None:
            raise ValueError("There is no trained model to save.")
        if not hasattr(self.model, "save"):
            raise ValueError("The current model is a bioimage.io package from another tool; "
                             f"it stays in {self.model.package.path}.")
        self.model.save(folder)
        show_info(f"Model saved to {folder}")

    def _ask_export(self) -> None:
        start_export(self, self.model)

    def _ask_save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save model into folder")
        if folder:
            self.save_model(folder)

    def _load_chosen(self, source: str) -> None:
        if not source:  # "trained here": keep the model in memory
            return
        try:
            self.load_model(source)
        except (OSError, ValueError) as exc:
            show_error(f"Cannot load model: {exc}")
