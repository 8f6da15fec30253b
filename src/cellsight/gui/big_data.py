"""Big layers in the docks: blockwise runs into a new OME-Zarr, and visible-region previews.

A layer is *big* when it is multiscale (an OME-Zarr opened lazily), holds a dask array,
or has more than :data:`BIG_PIXELS` pixels. For such a layer a dock runs the blockwise
backend (:mod:`cellsight.core.blocks`) in its worker and writes a NEW OME-Zarr next to
the input (:func:`output_path`); :class:`LiveOutput` shows that output as a lazy layer
that fills in while blocks finish. With "Visible region only" (:class:`BigDataBox`) the
dock instead loads the region shown in the canvas (:func:`visible_region`, read on the
worker through :class:`Crop`) and runs its normal in-memory prediction on it.
"""

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QCheckBox, QVBoxLayout

from cellsight.config.blocks import BlockConfig
from cellsight.gui.toolkit import ConfigForm, group

#: pixels above which a single-scale layer counts as big (~256 MP)
BIG_PIXELS = 256 * 2**20
#: largest visible region loaded for a preview (pixels)
PREVIEW_PIXELS = 64 * 2**20
#: seconds between refreshes of a live output layer
REFRESH_SECONDS = 1.0
_SUFFIXES = (".partial", ".zarr", ".ome", ".tiff", ".tif")


def level0(layer):
    """The full-resolution data of ``layer`` (level 0 of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def is_big(layer) -> bool:
    """Whether ``layer`` should run blockwise: multiscale, dask-backed, or > ~256 MP."""
    if layer is None:
        return False
    if getattr(layer, "multiscale", False):
        return True
    data = layer.data
    return type(data).__module__.startswith("dask") or int(np.prod(data.shape)) > BIG_PIXELS


def blockwise_source(layer):
    """What the blockwise backend reads: the layer's file if it has one, else level 0."""
    path = layer.metadata.get("path")
    if path and Path(path).exists():
        return str(path)
    return level0(layer)


def _stem(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name, changed = name[: -len(suffix)], True
    return name


def unique_path(folder, base: str, suffix: str = ".ome.zarr") -> Path:
    """``folder/base+suffix``, or ``base-2``, ``base-3``... if that (or its partial) exists."""
    folder, k = Path(folder), 1
    while True:
        name = f"{base}{suffix}" if k == 1 else f"{base}-{k}{suffix}"
        candidate = folder / name
        if not candidate.exists() and not Path(f"{candidate}.partial").exists():
            return candidate
        k += 1


def output_path(layer, what: str) -> Path:
    """A new OME-Zarr next to the layer's file: ``<stem>_<what>.ome.zarr`` (never existing).

    A layer without a file writes into the current folder, named after the layer.
    """
    source = layer.metadata.get("path") or getattr(layer.source, "path", None)
    if source:
        folder, stem = Path(source).parent, _stem(Path(source).name)
    else:
        folder, stem = Path.cwd(), re.sub(r"[^\w.-]+", "_", layer.name).strip("_") or "image"
    return unique_path(folder, f"{stem}_{what}")


# --- engine -------------------------------------------------------------------------


@contextmanager
def gui_engine(workers: int | None = None, retries: int = 2):
    """A started :class:`~cellsight.core.blocks.engine.Engine` for a dock's worker.

    The engine's dask client is not dask's default (see the engine), so napari keeps
    drawing lazy layers with its own scheduler while blocks run.
    """
    from cellsight.core.blocks.engine import Engine

    with Engine(workers=workers or None, retries=retries) as engine:
        yield engine


def run_blockwise(func, model, image, *args, blocks, **kwargs):
    """Worker: ``func(model, image, *args, blocks=..., engine=..., **kwargs)`` on a gui engine."""
    with gui_engine(blocks.workers, blocks.retries) as engine:
        return func(model, image, *args, blocks=blocks, engine=engine, **kwargs)


# --- visible region -----------------------------------------------------------------


def visible_region(viewer, layer) -> tuple[slice, ...]:
    """Level-0 slices of ``layer`` shown in the canvas (2D view; other axes in full).

    Computed from the camera (centre, zoom) and the canvas size, so it does not depend
    on a draw having happened.
    """
    if viewer.dims.ndisplay != 2:
        raise ValueError("Switch to the 2D view to predict the visible region.")
    camera = viewer.scene.camera
    height, width = viewer.canvas.size
    cy, cx = camera.center[-2:]
    half = np.array([height, width], float) / (2 * camera.zoom)
    point = np.array(viewer.dims.point, float)
    axes = list(viewer.dims.displayed)[-2:]
    corners = []
    for dy in (-1, 1):
        for dx in (-1, 1):
            world = point.copy()
            world[axes] = (cy + dy * half[0], cx + dx * half[1])
            corners.append(layer.world_to_data(world))
    corners = np.array(corners)
    shape = level0(layer).shape
    offset = len(point) - layer.ndim
    region = [slice(0, n) for n in shape]
    for axis in axes:
        k = axis - offset
        if 0 <= k < layer.ndim:
            lo = int(np.clip(np.floor(corners[:, k].min()), 0, shape[k]))
            hi = int(np.clip(np.ceil(corners[:, k].max()) + 1, 0, shape[k]))
            region[k] = slice(lo, hi)
    return tuple(region[: layer.ndim])


@dataclass
class Crop:
    """A region of a (lazy) array, read only on the worker by :func:`load`."""

    array: object
    region: tuple[slice, ...]
    rgb: bool = False

    @property
    def origin(self) -> tuple[int, ...]:
        """Level-0 index of the region's first pixel."""
        return tuple(s.start for s in self.region)

    @property
    def size(self) -> int:
        """Pixels in the region."""
        return int(np.prod([s.stop - s.start for s in self.region]))


def load(image) -> np.ndarray:
    """The pixels of ``image``: a :class:`Crop` is read now (call on the worker)."""
    if not isinstance(image, Crop):
        return image
    data = np.asarray(image.array[image.region])
    return data[..., :3].mean(axis=-1) if image.rgb else data


def visible_crop(viewer, layer) -> Crop:
    """The visible region of ``layer`` as a :class:`Crop` (raises if empty or too large)."""
    crop = Crop(level0(layer), visible_region(viewer, layer), bool(getattr(layer, "rgb", False)))
    if crop.size == 0:
        raise ValueError(f"Layer {layer.name!r} is not in view.")
    if crop.size > PREVIEW_PIXELS:
        raise ValueError(f"The visible region has {crop.size / 1e6:.0f} MP; zoom in "
                         f"(at most {PREVIEW_PIXELS / 1e6:.0f} MP) or uncheck Visible region only.")
    return crop


def placed(layer, origin=None, ndim: int | None = None) -> dict:
    """``scale`` / ``translate`` putting a result (of ``ndim`` axes) over ``layer``."""
    ndim = ndim or layer.ndim
    scale = np.asarray(layer.scale, float)[-ndim:]
    translate = np.asarray(layer.translate, float)[-ndim:]
    if origin is not None:
        translate = translate + np.asarray(origin, float)[-ndim:] * scale
    return {"scale": scale, "translate": translate}


# --- dock part ----------------------------------------------------------------------


class BigDataBox:
    """The "Big images" group of a dock: block size and "Visible region only"."""

    def __init__(self, idle_note: str = ""):
        self.form = ConfigForm(BlockConfig(), ("block_size",))
        self.visible_check = QCheckBox("Visible region only")
        self.visible_check.setToolTip(
            "Load only the part of the image shown in the canvas (full resolution) and "
            "predict it in memory: a quick preview of a huge image."
        )
        layout = QVBoxLayout()
        layout.addLayout(self.form)
        layout.addWidget(self.visible_check)
        self.widget = group("Big images (multiscale / OME-Zarr)", layout)
        self.widget.setToolTip(idle_note or "Big layers run block by block into a new OME-Zarr.")

    @property
    def visible_only(self) -> bool:
        """Whether to predict only the visible region."""
        return self.visible_check.isChecked()

    def blocks(self) -> BlockConfig:
        """Blockwise settings (never overwriting)."""
        return self.form.config(overwrite=False)


def _levels(levels: list, kind: str) -> list:
    """Levels for a multiscale layer: napari Labels need two; a strided view is added."""
    array = levels[0]
    if kind != "labels" or len(levels) > 1 or min(array.shape[-2:]) < 2:
        return list(levels)
    return [array, array[..., ::2, ::2]]


class LiveOutput:
    """The layer of a blockwise output: the partial level 0 while running, the result after.

    Call :meth:`poll` on the job's progress events (main thread); the layer appears once
    ``PATH.partial/0`` exists and is refreshed at most once per :data:`REFRESH_SECONDS`.
    :meth:`finish` swaps in the final multiscale OME-Zarr.
    """

    def __init__(self, viewer, path, kind: str, name: str, placement: dict, **extra):
        self.viewer, self.path, self.kind, self.name = viewer, Path(path), kind, name
        self.placement, self.extra = placement, extra
        self.layer = None
        self._last = 0.0

    def _add(self, levels):
        add = self.viewer.add_labels if self.kind == "labels" else self.viewer.add_image
        meta = {"cellsight_owned": True, "path": str(self.path)}
        self.layer = add(_levels(levels, self.kind), name=self.name, multiscale=True,
                         cache=False, metadata=meta, **self.placement, **self.extra)

    def poll(self, event=None) -> None:
        """Show the partial output as soon as it exists; refresh it (throttled)."""
        now = time.monotonic()
        if now - self._last < REFRESH_SECONDS:
            return
        self._last = now
        if self.layer is None:
            partial = Path(f"{self.path}.partial") / "0"
            if partial.exists():
                import dask.array as da

                self._add([da.from_zarr(str(partial))])
            return
        try:
            self.layer.refresh()
        except (OSError, ValueError, RuntimeError):  # a chunk being written: next time
            pass

    def finish(self, path) -> None:
        """Show the finished OME-Zarr at ``path`` (all its levels)."""
        from cellsight.io.omezarr import read_ome_zarr

        self.path = Path(path)
        levels = read_ome_zarr(path).levels
        if self.layer is None:
            self._add(levels)
        else:
            self.layer.data = _levels(levels, self.kind)
            self.layer.metadata["path"] = str(path)
        for key, value in self.extra.items():
            setattr(self.layer, key, value)
