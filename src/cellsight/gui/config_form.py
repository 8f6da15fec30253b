"""Qt form rows built from a pydantic config: labels, tooltips and bounds come from its fields.

Each field becomes an editor chosen by its annotation (``Literal`` -> combo box, ``bool``
-> check box, ``int`` / ``float`` -> spin box with the field's ``ge`` / ``le`` bounds).
Per-field ``options`` adjust the look without repeating the bounds:

- ``labels``: ``{value: text}`` shown for the choices of a ``Literal`` field;
- ``slider``: True for a labelled slider instead of a spin box (float fields);
- ``suffix``: unit text after the number (``" px"``);
- ``special``: text shown at the minimum (``"auto"`` where 0 means derived).

Lengths stored in pixels can be shown and entered in physical units
(:meth:`ConfigForm.set_unit`): the box shows ``pixels x size`` with the unit as suffix, and
:meth:`ConfigForm.values` / :meth:`ConfigForm.config` give pixels back.
"""

import typing

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QSpinBox,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from cellsight.config.base import StrictConfig

INT_LIMIT = 2**31 - 1


def _bounds(info) -> tuple[float | None, float | None]:
    lo = hi = None
    for item in info.metadata:
        for name in ("ge", "gt"):
            if getattr(item, name, None) is not None:
                lo = getattr(item, name)
        for name in ("le", "lt"):
            if getattr(item, name, None) is not None:
                hi = getattr(item, name)
    return lo, hi


def _choice_box(info, value, labels: dict) -> QComboBox:
    box = QComboBox()
    for choice in typing.get_args(info.annotation):
        box.addItem(labels.get(choice, str(choice)), choice)
    box.setCurrentIndex(max(box.findData(value), 0))
    return box


def _slider(lo, hi, value) -> QLabeledDoubleSlider:
    slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    slider.setRange(float(lo if lo is not None else 0.0), float(hi if hi is not None else 1.0))
    slider.setSingleStep(0.01)
    slider.setValue(float(value))
    return slider


def _number_box(info, value, options: dict) -> QWidget:
    lo, hi = _bounds(info)
    if options.get("slider"):
        return _slider(lo, hi, value)
    if info.annotation is int:
        box = QSpinBox()
        hi = INT_LIMIT if hi is None else min(hi, INT_LIMIT)
        box.setRange(int(lo if lo is not None else -INT_LIMIT), int(hi))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(6 if value and abs(value) < 0.01 else 3)
        box.setRange(float(lo if lo is not None else -1e9), float(hi if hi is not None else 1e9))
        box.setSingleStep(max(abs(float(value)) / 10, 1e-6) if value else 0.1)
    box.setSuffix(options.get("suffix", ""))
    box.setSpecialValueText(options.get("special", ""))
    _set_number(box, value)
    return box


def _set_number(box: QWidget, value) -> None:
    box.setValue(int(value) if isinstance(box, QSpinBox) else float(value))


def _editor(info, value, options: dict) -> QWidget:
    if typing.get_origin(info.annotation) is typing.Literal:
        return _choice_box(info, value, options.get("labels", {}))
    if info.annotation is bool:
        box = QCheckBox()
        box.setChecked(bool(value))
        return box
    return _number_box(info, value, options)


def _read(box: QWidget):
    if isinstance(box, QComboBox):
        return box.currentData()
    if isinstance(box, QCheckBox):
        return box.isChecked()
    return box.value()


def _write(box: QWidget, value) -> None:
    box.blockSignals(True)
    if isinstance(box, QComboBox):
        box.setCurrentIndex(max(box.findData(value), 0))
    elif isinstance(box, QCheckBox):
        box.setChecked(bool(value))
    else:
        _set_number(box, value)
    box.blockSignals(False)


def _changed_signal(box: QWidget):
    if isinstance(box, QComboBox):
        return box.currentIndexChanged
    if isinstance(box, QCheckBox):
        return box.toggled
    return box.valueChanged


class ConfigForm(QFormLayout):
    """Form rows for chosen fields of a :class:`StrictConfig`.

    Parameters
    ----------
    config : StrictConfig
        Instance whose values fill the editors.
    fields : sequence of str
        Field names to show, in order; the others keep the instance's values.
    options : dict, optional
        ``{field: {option: value}}`` (see the module docstring).

    Attributes
    ----------
    changed : Signal
        Emitted when the user edits any field (not by :meth:`set_values`).
    """

    changed = Signal()

    def __init__(self, config: StrictConfig, fields: typing.Sequence[str], options=None):
        super().__init__()
        self._base = config
        self.editors: dict[str, QWidget] = {}
        self._per_pixel: dict[str, float] = {}  # fields shown in physical units
        self._suffix: dict[str, str] = {}  # their suffix in pixels
        options = options or {}
        for name in fields:
            info = type(config).model_fields[name]
            title, tip = type(config).field_help(name)
            box = _editor(info, getattr(config, name), options.get(name, {}))
            box.setToolTip(tip)
            _changed_signal(box).connect(self._emit_changed)
            self.editors[name] = box
            self._suffix[name] = options.get(name, {}).get("suffix", "")
            self.addRow(title, box)

    def take_rows(self, fields: typing.Sequence[str]) -> QFormLayout:
        """Move the rows of ``fields`` into a new form to place elsewhere (e.g. the basic
        part of a dock); their editors still belong to this form (values, config)."""
        other = QFormLayout()
        for name in fields:
            box = self.editors[name]
            row, _ = self.getWidgetPosition(box)
            taken = self.takeRow(row)
            label = taken.labelItem.widget() if taken.labelItem is not None else None
            if label is not None:
                other.addRow(label, box)
            else:
                other.addRow(box)
        return other

    def _emit_changed(self, *args) -> None:
        self.changed.emit()

    def values(self) -> dict:
        """The edited values, by field name (lengths in pixels, whatever the box shows)."""
        return {name: _read(box) / self._per_pixel[name] if name in self._per_pixel
                else _read(box) for name, box in self.editors.items()}

    def set_unit(self, name: str, size: tuple[float, str] | None) -> None:
        """Show and enter the length field ``name`` in physical units, or in pixels.

        ``size`` is ``(units per pixel, unit)``, e.g. ``(0.65, "µm")`` from the layer the
        dock works on; None goes back to pixels. The value the box holds is kept (converted),
        and the bounds follow.
        """
        box = self.editors[name]
        if not isinstance(box, QDoubleSpinBox):
            raise TypeError(f"{name} is not a length field (a float spin box).")
        pixels = self.values()[name]
        lo, hi = _bounds(type(self._base).model_fields[name])
        factor = float(size[0]) if size is not None else 1.0
        if size is not None:
            self._per_pixel[name] = factor
        else:
            self._per_pixel.pop(name, None)
        box.blockSignals(True)
        box.setSuffix(f" {size[1]}" if size is not None else self._suffix[name])
        box.setDecimals(3 if size is not None and factor < 1 else 2 if size is not None else
                        box.decimals())
        box.setRange(float(lo if lo is not None else -1e9) * factor,
                     float(hi if hi is not None else 1e9) * factor)
        box.setValue(pixels * factor)
        box.blockSignals(False)

    def set_values(self, values) -> None:
        """Show ``values`` in the editors without emitting ``changed``.

        A config of the form's type also becomes the base for the fields not shown.
        """
        if isinstance(values, type(self._base)):
            self._base = values
        if isinstance(values, StrictConfig):
            values = values.model_dump()
        for name, box in self.editors.items():
            if name in values:
                _write(box, values[name] * self._per_pixel.get(name, 1.0)
                       if name in self._per_pixel else values[name])

    def config(self, **extra) -> StrictConfig:
        """A validated config: the base values updated with the edited ones and ``extra``."""
        values = {**self._base.model_dump(), **self.values(), **extra}
        return type(self._base).model_validate(values)
