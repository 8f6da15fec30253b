"""Small layout pieces every dock repeats: form rows, button grids, groups, device box."""

import typing

from qtpy.QtWidgets import QComboBox, QFormLayout, QGridLayout, QGroupBox, QPushButton

from cellsight.config.device import DeviceConfig, DeviceName


def _qt(widget):
    """The Qt widget of a magicgui widget, or the widget itself."""
    return getattr(widget, "native", widget)


def form(*rows) -> QFormLayout:
    """A form from ``(label, widget or layout)`` rows; magicgui widgets are accepted."""
    layout = QFormLayout()
    for label, widget in rows:
        layout.addRow(label, _qt(widget))
    return layout


def button_grid(slots, columns: int = 3) -> tuple[QGridLayout, dict[str, QPushButton]]:
    """Buttons from ``(text, slot)`` pairs, ``columns`` per row; also returned by text."""
    grid, buttons = QGridLayout(), {}
    for k, (text, slot) in enumerate(slots):
        button = QPushButton(text)
        button.clicked.connect(slot)
        grid.addWidget(button, k // columns, k % columns)
        buttons[text.replace("&&", "&")] = button
    return grid, buttons


def group(title: str, layout) -> QGroupBox:
    """A titled box around ``layout``."""
    box = QGroupBox(title)
    box.setLayout(layout)
    return box


def device_box() -> QComboBox:
    """Compute-device choice (auto, cpu, cuda, mps) with its help as tooltip."""
    box = QComboBox()
    box.addItems(list(typing.get_args(DeviceName)))
    box.setToolTip(DeviceConfig.field_help("device")[1])
    return box
