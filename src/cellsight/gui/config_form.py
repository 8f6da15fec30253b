"""Qt form rows built from a pydantic config: labels and tooltips come from its fields."""

import typing

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox, QWidget

from cellsight.config.base import StrictConfig


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


def _editor(info, value) -> QWidget:
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        box = QComboBox()
        box.addItems([str(v) for v in typing.get_args(annotation)])
        box.setCurrentText(str(value))
        return box
    if annotation is bool:
        box = QCheckBox()
        box.setChecked(bool(value))
        return box
    lo, hi = _bounds(info)
    if annotation is int:
        box = QSpinBox()
        box.setRange(int(lo if lo is not None else -(2**31)), int(min(hi or 2**31 - 1, 2**31 - 1)))
        box.setValue(int(value))
        return box
    box = QDoubleSpinBox()
    box.setDecimals(6 if value and abs(value) < 0.01 else 3)
    box.setRange(float(lo if lo is not None else -1e9), float(hi if hi is not None else 1e9))
    box.setSingleStep(max(abs(float(value)) / 10, 1e-6) if value else 0.1)
    box.setValue(float(value))
    return box


def _read(box: QWidget, info):
    if isinstance(box, QComboBox):
        text = box.currentText()
        choices = typing.get_args(info.annotation)
        return next(c for c in choices if str(c) == text)
    if isinstance(box, QCheckBox):
        return box.isChecked()
    return box.value()


class ConfigForm(QFormLayout):
    """Form rows for chosen fields of a :class:`StrictConfig`.

    Parameters
    ----------
    config : StrictConfig
        Instance whose values fill the editors.
    fields : sequence of str
        Field names to show, in order; the others keep the instance's values.
    """

    def __init__(self, config: StrictConfig, fields: typing.Sequence[str]):
        super().__init__()
        self._base = config
        self.editors: dict[str, QWidget] = {}
        for name in fields:
            info = type(config).model_fields[name]
            title, tip = type(config).field_help(name)
            box = _editor(info, getattr(config, name))
            box.setToolTip(tip)
            self.editors[name] = box
            self.addRow(title, box)

    def values(self) -> dict:
        """The edited values, by field name."""
        fields = type(self._base).model_fields
        return {name: _read(box, fields[name]) for name, box in self.editors.items()}

    def config(self, **extra) -> StrictConfig:
        """A validated config: the base values updated with the edited ones and ``extra``."""
        values = {**self._base.model_dump(), **self.values(), **extra}
        return type(self._base).model_validate(values)
