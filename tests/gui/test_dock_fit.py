"""Basic and advanced (issue 19 item 5): every dock fits a 1280x800 window.

Each dock from the manifest is opened in a 1280x800 napari window. What it shows by
default (outside its collapsed "Advanced" section) is at most :data:`MAX_CONTROLS`
editable controls; it fits in :data:`MAX_HEIGHT` pixels of height, or scrolls; every
push button says what it does in a tooltip.
"""

import numpy as np
import pytest
from npe2 import PluginManager
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QWidget,
)

#: the dock's share of a 1280x800 window (title bar, menus and the dock's title left out)
MAX_HEIGHT = 700
#: editable controls a dock shows before "Advanced" is opened
MAX_CONTROLS = 8
ADVANCED = "advanced"  # objectName of a dock's collapsible Advanced section


def _widget_names():
    pm = PluginManager()
    pm.discover()
    names = [w.display_name for w in pm.get_manifest("cellsight").contributions.widgets or []]
    return names


def _inside_advanced(widget: QWidget, dock: QWidget) -> bool:
    while widget is not None and widget is not dock:
        if widget.objectName() == ADVANCED:
            return True
        widget = widget.parentWidget()
    return False


def _shown(widget: QWidget, dock: QWidget) -> bool:
    """Shown by default: not hidden, not inside the Advanced section (scrolling is fine)."""
    return widget.isVisibleTo(dock) and not _inside_advanced(widget, dock)


def editable_controls(dock: QWidget) -> list[QWidget]:
    """Inputs a user sets (choosers, numbers, sliders, check boxes, text), not buttons."""
    kinds = (QComboBox, QAbstractSpinBox, QAbstractSlider, QCheckBox, QLineEdit)
    found = []
    for widget in dock.findChildren(QWidget):
        if not isinstance(widget, kinds) or not _shown(widget, dock):
            continue
        parent = widget.parentWidget()
        # parts of one control (the spin box of a labelled slider, a combo box's editor)
        if isinstance(parent, kinds) or type(parent).__name__.startswith("QLabeled"):
            continue
        if isinstance(widget, QAbstractSlider) and type(parent).__name__ == "QScrollBar":
            continue
        if isinstance(widget, QAbstractSlider) and isinstance(
                widget.parentWidget(), QScrollArea):
            continue
        if type(widget).__name__ == "QScrollBar":
            continue
        found.append(widget)
    return found


def describe(widget: QWidget) -> str:
    text = getattr(widget, "text", lambda: "")() if isinstance(widget, QAbstractButton) else ""
    return f"{type(widget).__name__}({text or widget.toolTip()[:30]!r})"


def _scroll_area(widget: QWidget) -> QScrollArea | None:
    """The scroll area holding the whole dock, if it has one."""
    scroll = widget.findChild(QScrollArea)
    if scroll is not None and scroll.parentWidget() is widget and scroll.widget() is not None:
        return scroll
    return None


@pytest.mark.parametrize("name", _widget_names())
def test_dock_fits_1280x800_with_few_controls_and_tooltips(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    dock, widget = viewer.window.add_plugin_dock_widget("cellsight", name)
    widget = getattr(widget, "native", widget)
    qtbot.wait(50)
    controls = editable_controls(widget)
    scroll = _scroll_area(widget)
    # what the dock shows by default, unscrolled (Advanced collapsed)
    content = (scroll.widget() if scroll is not None else widget).sizeHint().height()
    needed = widget.minimumSizeHint().height()  # below this napari squeezes it
    print(f"\n{name}: {len(controls)} controls shown, content height {content}px, "
          f"minimum height {needed}px, scroll area: {scroll is not None}")
    untipped = [b.text() for b in widget.findChildren(QPushButton) if not b.toolTip()]
    assert not untipped, f"buttons without a tooltip: {untipped}"
    assert len(controls) <= MAX_CONTROLS, [describe(c) for c in controls]
    assert needed <= MAX_HEIGHT, f"{name} needs {needed} px of height"
    assert content <= MAX_HEIGHT or scroll is not None, (
        f"{name} wants {content} px and cannot scroll")
    if scroll is not None:  # nothing cut off at the right edge once the layers are listed
        viewer.add_image(np.zeros((8, 8)), name="an image layer with quite a long name")
        qtbot.wait(50)
        inner = scroll.widget()
        assert inner.width() <= scroll.viewport().width() + 1, (
            f"{name}: content {inner.width()} px wide in a {scroll.viewport().width()} px area")
