"""Small helpers between napari layers and arrays (main thread only)."""

import numpy as np


def apply_labels_edit(layer, new: np.ndarray) -> int:
    """Write ``new`` into a Labels layer as ONE undoable edit; return pixels changed.

    Only the differing pixels are written, through ``Labels.data_setitem`` so napari's
    undo (Ctrl+Z) restores them.
    """
    old = np.asarray(layer.data)
    if new.shape != old.shape:
        raise ValueError(f"Edit shape {new.shape} differs from layer {layer.name!r} {old.shape}.")
    changed = np.nonzero(new != old)
    if changed[0].size == 0:
        return 0
    layer.data_setitem(changed, new[changed].astype(old.dtype))
    return int(changed[0].size)


def owned_layer(viewer, name: str):
    """The layer called ``name`` if cellsight created it, else None."""
    if name in viewer.layers and viewer.layers[name].metadata.get("cellsight_owned"):
        return viewer.layers[name]
    return None


def add_or_update_labels(viewer, data: np.ndarray, name: str, **kwargs):
    """Show ``data`` in a cellsight-owned Labels layer: update it, or add a new one.

    A user's layer with the same name is never touched; a new name is chosen instead.
    """
    layer = owned_layer(viewer, name)
    if layer is not None and layer.data.shape == data.shape:
        layer.data = data
        return layer
    meta = dict(kwargs.pop("metadata", {}) or {})
    meta["cellsight_owned"] = True
    return viewer.add_labels(data, name=name, metadata=meta, **kwargs)
