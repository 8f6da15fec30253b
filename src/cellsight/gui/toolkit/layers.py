"""Layer choosers that follow the viewer's layer list, and what docks read from layers.

A chooser is magicgui's napari layer-typed combo box (``create_widget(annotation=
napari.layers.Image)``), bound to the dock's own viewer: its choices come from that
viewer (not from whichever viewer is current) and it refreshes itself when layers are
added, removed, moved or renamed, whether the dock is docked or built on its own.
Its ``value`` is the chosen layer (or None).
"""

import numpy as np
from magicgui.widgets import ComboBox, create_widget

from cellsight.core.arrays.guess import axes_choices, guess_mode

#: layers the plugin shows for the user's information only; never offered as inputs
HELPER_KEYS = ("cellsight_preview", "cellsight_overlay")
_LAYER_EVENTS = ("inserted", "removed", "reordered", "renamed")


def layer_chooser(viewer, kind, label: str = "", optional: bool = False) -> ComboBox:
    """A combo box of the ``kind`` layers of ``viewer`` that keeps up with the layer list.

    Parameters
    ----------
    viewer : napari.Viewer
    kind : type
        A napari layer class, e.g. ``napari.layers.Image``.
    label : str
        Text of the chooser's form row.
    optional : bool
        Offer "no layer" (value None) as the first choice.

    Returns
    -------
    magicgui.widgets.ComboBox
        ``value`` is the chosen layer; ``changed`` fires when it changes.
    """

    def choices(widget) -> list:
        return [
            layer for layer in viewer.layers
            if isinstance(layer, kind) and not any(layer.metadata.get(k) for k in HELPER_KEYS)
        ]

    annotation = kind | None if optional else kind
    chooser = create_widget(annotation=annotation, label=label, options={"choices": choices})
    for name in _LAYER_EVENTS:
        getattr(viewer.layers.events, name).connect(chooser.reset_choices)
    chooser.reset_choices()
    return chooser


def layer_array(layer) -> np.ndarray:
    """A layer's data as one numpy array (RGB averaged to grey)."""
    data = np.asarray(layer.data)
    if getattr(layer, "rgb", False):
        data = data[..., :3].mean(axis=-1)
    return data


def layer_axes_choices(layer) -> tuple[str, ...]:
    """Axis strings ``layer``'s data may have, the most likely (or the file's) first."""
    return axes_choices(
        layer.data.shape, bool(getattr(layer, "rgb", False)), layer.metadata.get("axes", "")
    )


def layer_mode(layer, model_ndim: int = 2) -> str:
    """How a model of ``model_ndim`` spatial dims reads ``layer``: "2d", "3d" or "t"."""
    return guess_mode(layer.ndim, model_ndim, bool(getattr(layer, "rgb", False)))
