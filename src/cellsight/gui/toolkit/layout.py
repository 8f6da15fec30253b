"""Small layout pieces every dock repeats: form rows, button grids, groups, device box,
the collapsible Advanced section and the scroll area that keeps a dock within the screen.
"""

import typing

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QLayout,
    QPushButton,
    QScrollArea,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

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
    """Buttons from ``(text, slot)`` or ``(text, slot, tooltip)``, ``columns`` per row.

    The buttons are also returned by text.
    """
    grid, buttons = QGridLayout(), {}
    for k, (text, slot, *tip) in enumerate(slots):
        button = QPushButton(text)
        button.clicked.connect(slot)
        if tip:
            button.setToolTip(tip[0])
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


#: objectName of a dock's collapsible "Advanced" section
ADVANCED = "advanced"


def advanced(*parts, title: str = "Advanced") -> QCollapsible:
    """A collapsed section holding ``parts`` (widgets or layouts): what experts change.

    Its ``objectName`` is :data:`ADVANCED`, so tests can tell basic controls from the rest.
    """
    section = QCollapsible(title)
    section.setObjectName(ADVANCED)
    for part in parts:
        if isinstance(part, QLayout):
            holder = QWidget()
            holder.setLayout(part)
            part.setContentsMargins(0, 0, 0, 0)
            part = holder
        section.addWidget(_qt(part))
    section.collapse(animate=False)
    section.toggleButton().setToolTip("Settings most tasks never need: click to show or "
                                      "hide them.")
    return section


def scroll_layout(dock: QWidget) -> QVBoxLayout:
    """Put ``dock``'s content in a vertical scroll area; return the content's layout.

    The dock then fits any screen height (``dock.scroll_area`` scrolls what does not);
    the content keeps its full width (no horizontal scroll bar).
    """
    content = QWidget()
    content.setObjectName("dock_content")
    layout = QVBoxLayout(content)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(content)
    outer = QVBoxLayout(dock)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    dock.scroll_area = area

    def fit_width() -> None:
        bar = max(area.verticalScrollBar().sizeHint().width(),
                  area.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent))
        area.setMinimumWidth(content.minimumSizeHint().width() + bar + 4)

    dock.fit_width = fit_width
    # the content's minimum width grows after construction (layer names in the combo
    # boxes, expanded sections): follow it, or the right edge of the dock is cut off
    dock._fit_width_filter = _OnLayoutRequest(content, fit_width)
    return layout


class _OnLayoutRequest(QObject):
    """Call ``callback`` whenever ``widget``'s layout is recomputed."""

    def __init__(self, widget: QWidget, callback) -> None:
        super().__init__(widget)
        self._callback = callback
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.LayoutRequest:
            self._callback()
        return False
