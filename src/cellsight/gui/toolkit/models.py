"""Choosing, loading and saving models in the docks.

:class:`ModelChooser` lists the built-in models (:data:`cellsight.models.BUILTIN_MODELS`),
the folders used so far, and items that ask the user for a model. Those items are
:data:`PICKERS`: text -> ``picker(parent)`` returning a source or None; a bioimage.io
package picker slots in there without touching the docks.
"""

from collections.abc import Callable

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFileDialog

from cellsight.models import BUILTIN_MODELS

FOLDER_ITEM = "a folder…"
BUILTIN_SUFFIX = " (built-in)"


def pick_folder(parent) -> str | None:
    """Ask for a model folder (``config.yaml`` + ``weights.pt`` + ``meta.json``)."""
    return QFileDialog.getExistingDirectory(parent, "Model folder") or None


#: items of every chooser that ask the user for a model, in order
PICKERS: dict[str, Callable] = {FOLDER_ITEM: pick_folder}


def model_ndim(source: str, default: int = 2) -> int:
    """Spatial dimensions of the model ``source`` (built-in name or folder), from its config."""
    from cellsight.io.model_folder import read_config
    from cellsight.models import resolve_model

    try:
        return int(read_config(resolve_model(source))["unet"]["ndim"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


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

    def __init__(self, builtins=BUILTIN_MODELS, none_text: str | None = None, pickers=None):
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
        self.model.save(folder)
        show_info(f"Model saved to {folder}")

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
