"""One file in, one file out: the per-file work of a batch (segment, semantic, denoise).

Each function reads ``item.source``, predicts in memory (batch files are fields of view,
not slide scans: a huge image goes through the blockwise predictors instead) and writes
``item.output`` atomically: a TIFF (``.tif``) or an OME-Zarr (``.zarr``) by its name.
"""

from pathlib import Path

import numpy as np

from cellsight.config.instances import InstancePostConfig, InstancePredictConfig


def read_gray(path: str) -> tuple[np.ndarray, str]:
    """Pixels and axes of an image file; RGB(A) pictures become one grey channel."""
    if Path(path).suffix.lower() == ".zarr":
        from cellsight.io.omezarr import read_ome_zarr

        lazy = read_ome_zarr(path)
        return np.asarray(lazy.data.compute()), lazy.axes
    from cellsight.io.images import read_any

    image = read_any(path)
    if image.axes.endswith("S") and image.data.ndim == 3:
        return image.data[..., :3].mean(axis=-1), image.axes[:-1]
    return image.data, image.axes


def instance_mode(axes: str, ndim: int, model_ndim: int, timeseries: bool = False) -> str:
    """Prediction mode from the image's axes: ``2d``, ``3d`` (a Z stack) or ``t`` (frames).

    Examples
    --------
    >>> instance_mode("YX", 2, 2), instance_mode("ZYX", 3, 2), instance_mode("QYX", 3, 2)
    ('2d', '3d', 't')
    """
    if ndim == 2:
        if timeseries:
            raise ValueError("timeseries was asked for, but the image is 2D (Y, X): it has no "
                             "time axis (leave out --timeseries).")
        return "2d"
    axes = axes.upper()
    if timeseries or "T" in axes or ndim == 4:
        return "t"
    if "Z" in axes or model_ndim == 3:
        return "3d"
    return "t"  # an unnamed stack: frames stay independent, a T-stack gives a T-stack


def write_result(path: str, array: np.ndarray, axes: str | None, labels: bool) -> None:
    """Write a result atomically as TIFF or OME-Zarr (by the name's suffix)."""
    if Path(path).suffix.lower() == ".zarr":
        from cellsight.io.omezarr import write_ome_zarr

        write_ome_zarr(path, array, axes=axes or _plain_axes(array.ndim),
                       kind="labels" if labels else "image")
        return
    from cellsight.io.tiff import write_image, write_labels

    (write_labels if labels else write_image)(path, array, axes=axes)


def _plain_axes(ndim: int) -> str:
    return "TZYX"[4 - ndim:]


def segment_file(item, model, config: InstancePredictConfig, post: InstancePostConfig | None,
                 timeseries: bool = False) -> dict:
    """Separated objects of one file (mode from its axes unless ``config`` says 2d/3d/t)."""
    from cellsight.core.segmentation.instance_model import segment_instances

    data, axes = read_gray(item.source)
    mode = instance_mode(axes, data.ndim, model.config.unet.ndim, timeseries)
    labels = segment_instances(model, data, config.model_copy(update={"mode": mode}), post)
    out_axes = {"2d": "YX", "3d": "ZYX", "t": "TYX" if labels.ndim == 3 else "TZYX"}[mode]
    write_result(item.output, labels, out_axes, labels=True)
    return {"objects": int(sum(len(np.unique(f)) - 1 for f in
                               (labels if mode == "t" else [labels])))}


def semantic_file(item, model, tta: bool = False) -> dict:
    """Class labels of one file with a semantic model."""
    from cellsight.config.semantic import SemanticPredictConfig
    from cellsight.core.segmentation.semantic import predict_semantic

    data, axes = read_gray(item.source)
    timeseries = data.ndim > model.config.unet.ndim
    config = SemanticPredictConfig(timeseries=timeseries, test_time_augmentation=tta)
    result = predict_semantic(model, data, config)
    write_result(item.output, result.labels, axes if len(axes) == data.ndim else None,
                 labels=True)
    return {"objects": ""}


def denoise_file(item, model) -> dict:
    """Noise2Void-denoised copy of one file (frames first, then ``ZYX`` / ``YX``)."""
    from cellsight.config.n2v import DenoisePredictConfig
    from cellsight.core.denoise.model import denoise

    data, axes = read_gray(item.source)
    axes = axes if len(axes) == data.ndim else None
    denoised = denoise(model, data, DenoisePredictConfig(axes=axes or ""))
    write_result(item.output, denoised, axes, labels=False)
    return {"objects": ""}


#: packages opened by :func:`package_file`, per process (a worker loads each once)
_PACKAGES: dict = {}


def package_file(item, package: str, trust: bool = False, post=None, device: str = "auto",
                 axes: str | None = None, tile_size: int = 0, tta: bool = False) -> dict:
    """One file through a bioimage.io package from another tool; written by what it makes.

    ``package`` is the package's path (each worker process opens it once, so the batch
    runs on a cluster too). Labels (semantic classes, or instances from foreground /
    boundary maps with ``post``) are written as labels; a restored image, or an output
    cellsight cannot interpret, as a float32 image. Returns ``{"objects": n}`` for
    instances.
    """
    from cellsight.core.bmz.run import load_package, predict_package

    key = (str(package), bool(trust))
    if key not in _PACKAGES:
        _PACKAGES[key] = load_package(package, trust=trust, prefer_cellsight=False)
    model = _PACKAGES[key]
    if Path(item.source).suffix.lower() == ".zarr":
        data, found = read_gray(item.source)
    else:
        from cellsight.io.images import read_any

        image = read_any(item.source)
        data, found = image.data, image.axes
    given = axes or (found if len(found) == data.ndim and set(found) <= set("TCZYX") else None)
    result = predict_package(model, data, axes=given, tile_size=tile_size, device=device,
                             post=post, tta=tta)
    if result.labels is not None:
        write_result(item.output, result.labels, None, labels=True)
        return {"objects": int(result.labels.max()) if result.kind == "instance" else ""}
    array = result.image if result.image is not None else result.output
    write_result(item.output, np.asarray(array, np.float32),
                 given if result.image is not None and given and len(given) == array.ndim
                 else None, labels=False)
    return {"objects": ""}
