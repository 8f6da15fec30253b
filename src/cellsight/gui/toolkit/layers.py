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
from cellsight.gui.layer_utils import PREDICTION_KEY

#: layers the plugin shows for the user's information only; never offered as inputs
HELPER_KEYS = ("cellsight_preview", "cellsight_overlay")
_LAYER_EVENTS = ("inserted", "removed", "reordered", "renamed")


def _owned(layer) -> bool:
    return bool(layer.metadata.get("cellsight_owned"))


def user_layer(layer) -> bool:
    """True for a layer the user opened or made (not a result a cellsight dock added)."""
    return not _owned(layer)


def layer_chooser(viewer, kind, label: str = "", optional: bool = False,
                  usable=None, prefer=None) -> ComboBox:
    """A combo box of the ``kind`` layers of ``viewer`` that keeps up with the layer list.

    Until a layer is chosen (by the user or by code), the chooser shows the most recent
    (topmost) layer the dock can use: the newest ``prefer``-ed one, else the newest
    ``usable`` one, else none. A chosen layer stays chosen while it exists. An
    ``optional`` chooser without ``usable`` / ``prefer`` starts at "no layer".

    Parameters
    ----------
    viewer : napari.Viewer
    kind : type
        A napari layer class, e.g. ``napari.layers.Image``.
    label : str
        Text of the chooser's form row.
    optional : bool
        Offer "no layer" (value None) as the first choice.
    usable : callable, optional
        ``usable(layer) -> bool``: layers the dock can work on; the others are still
        offered but never preselected (the chooser then offers "no layer" too).
    prefer : callable, optional
        ``prefer(layer) -> bool``: usable layers to preselect before the other usable
        ones (e.g. :func:`user_layer`: the user's data before the docks' results).

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

    nullable = optional or usable is not None
    annotation = kind | None if nullable else kind
    chooser = create_widget(annotation=annotation, label=label, options={"choices": choices})
    state = {"chosen": None, "busy": False}

    def best():
        if optional and usable is None and prefer is None:
            return None  # an optional input starts at "no layer"
        layers = [layer for layer in reversed(choices(chooser))
                  if usable is None or usable(layer)]
        preferred = [layer for layer in layers if prefer is None or prefer(layer)]
        return (preferred or layers or [None])[0]

    def remember(value) -> None:
        if not state["busy"]:
            state["chosen"] = value

    def refresh(event=None) -> None:
        state["busy"] = True
        try:
            chooser.reset_choices()
            present = choices(chooser)
            chosen = state["chosen"]
            if chosen is not None and any(chosen is layer for layer in present):
                if chooser.value is not chosen:
                    chooser.value = chosen
                return
            state["chosen"] = None
            target = best()
            if target is not None or nullable:
                if chooser.value is not target:
                    chooser.value = target
        finally:
            state["busy"] = False

    chooser.changed.connect(remember)
    chooser.refresh_choices = refresh
    for name in _LAYER_EVENTS:
        getattr(viewer.layers.events, name).connect(refresh)
    refresh()
    return chooser


def label_count(layer, limit: int = 10) -> int:
    """Distinct non-zero ids of a Labels layer, counted exactly up to ``limit`` + 1.

    Cheap for the usual cases: a layer whose largest id is at most ``limit`` is counted
    from its maximum; big layers (> 64 M pixels, multiscale) are sampled.
    """
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[-1]
    size = int(np.prod(data.shape))
    if size > 2**26:
        step = int(np.ceil((size / 2**24) ** (1 / 2)))
        data = data[(..., slice(None, None, step), slice(None, None, step))]
    array = np.asarray(data)
    if array.size == 0:
        return 0
    top = int(array.max())
    if 0 <= int(array.min()) and top <= limit:
        return int(np.count_nonzero(np.bincount(array.ravel().astype(np.intp))[1:]))
    return int(np.count_nonzero(np.unique(array)))


#: more distinct ids than this in a Labels layer look like instance masks, not class strokes
MAX_STROKE_CLASSES = 10


def looks_like_instances(layer) -> bool:
    """Whether a Labels layer holds more than :data:`MAX_STROKE_CLASSES` distinct ids."""
    return label_count(layer, MAX_STROKE_CLASSES) > MAX_STROKE_CLASSES


def stroke_layer(layer) -> bool:
    """A Labels layer that can hold class strokes (1..K with K <= ~10)."""
    return not looks_like_instances(layer)


def time_series_labels(layer) -> bool:
    """A Labels layer with a time axis (T, [Z,] Y, X): what tracking needs."""
    axes = str(layer.metadata.get("axes", ""))
    if axes:
        return axes.upper().startswith("T")
    return layer.ndim >= 3


def corrected_labels(layer) -> bool:
    """A Labels layer holding a dock's prediction (corrected or not): fine-tuning input."""
    return layer.metadata.get(PREDICTION_KEY) is not None


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
