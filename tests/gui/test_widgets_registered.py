"""Every widget in the manifest can be opened from napari's Plugins menu."""

import pytest
from npe2 import PluginManager


def _widget_names():
    pm = PluginManager()
    pm.discover()
    return [w.display_name for w in pm.get_manifest("cellsight").contributions.widgets or []]


@pytest.mark.parametrize("name", _widget_names())
def test_widget_docks(make_napari_viewer, name):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("cellsight", name)
    assert widget is not None and dock is not None
