"""Small helpers between napari layers and arrays (main thread only)."""

import zlib

import numpy as np

#: metadata key of the labels a segmentation dock predicted (what corrections compare with)
PREDICTION_KEY = "cellsight_prediction"
#: metadata key of the digests of the labels a dock wrote into its own result layer
WRITTEN_KEY = "cellsight_written"
#: metadata key set once the user edited a result layer (paint, fill, erase, Correct dock)
EDITED_KEY = "cellsight_user_edited"
#: digests of a dock's own writes kept per layer (an undo may return to any of them)
KEEP_DIGESTS = 16


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


def labels_digest(data) -> tuple:
    """A cheap fingerprint of a label array: shape, dtype and CRC-32 (~1 ms per 4 MB)."""
    array = np.ascontiguousarray(np.asarray(data))
    return array.shape, array.dtype.str, zlib.crc32(memoryview(array).cast("B"))


def record_written(layer, data) -> None:
    """Remember that a dock wrote ``data`` into ``layer`` (see :func:`user_edited`)."""
    digests = [*layer.metadata.get(WRITTEN_KEY, ()), labels_digest(data)]
    layer.metadata[WRITTEN_KEY] = digests[-KEEP_DIGESTS:]
    layer.metadata[EDITED_KEY] = False


def user_edited(layer) -> bool:
    """Whether ``layer`` holds something other than what a dock wrote into it.

    True once a paint / fill / erase / Correct-dock edit was seen (``EDITED_KEY``, set
    by :func:`watch_user_edits`), or when the data matches none of the digests recorded
    by :func:`record_written` (edits made without events, a replaced array). A layer
    without a record counts as edited.
    """
    if layer.metadata.get(EDITED_KEY):
        return True
    written = layer.metadata.get(WRITTEN_KEY)
    return not written or labels_digest(layer.data) not in written


def watch_user_edits(layer, writing) -> None:
    """Set ``EDITED_KEY`` on ``layer`` at every paint event not caused by the dock.

    ``writing()`` tells whether the dock itself is writing at that moment.
    """
    def on_paint(event=None) -> None:
        if not writing():
            layer.metadata[EDITED_KEY] = True

    layer.events.paint.connect(on_paint)


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


def pixel_size(layer) -> tuple[float, str] | None:
    """``(0.65, "µm")``: a layer's physical pixel size along its last axis, None in pixels.

    The layer's ``scale`` and ``units`` come from OME-TIFF / ImageJ / OME-Zarr metadata;
    a layer in pixels (napari's default) gives None.
    """
    if layer is None:
        return None
    try:
        unit = layer.units[-1]
        scale = float(layer.scale[-1])
    except (AttributeError, IndexError, TypeError):
        return None
    name = str(unit)
    if name in ("pixel", "", "None") or scale <= 0:
        return None
    return scale, {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm"}.get(name, name)


def physical_size(layer, pixels: float) -> str:
    """`` = 9.7 µm`` for a length in pixels along a layer's last axis, "" without units."""
    size = pixel_size(layer)
    if size is None:
        return ""
    return f" = {pixels * size[0]:.3g} {size[1]}"
