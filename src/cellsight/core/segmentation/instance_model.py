"""Instance models: train on instance labels, predict maps, segment separated objects.

An instance model is a semantic model over three classes (background, interior,
boundary): :func:`train_instances` turns instance labels into class maps
(:func:`cellsight.core.segmentation.instance_targets.instance_targets`) and trains them with
:func:`cellsight.core.segmentation.semantic.train_semantic`, unchanged. Prediction keeps the
foreground and boundary maps (:func:`predict_instance_maps`) so the watershed
thresholds can be changed without running the network again.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cellsight.config.instances import (
    InstanceConfig,
    InstancePostConfig,
    InstancePredictConfig,
)
from cellsight.config.semantic import SemanticPredictConfig
from cellsight.core.arrays.labels import as_labels
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.core.segmentation.instance_targets import instance_targets, median_diameter
from cellsight.core.segmentation.semantic import (
    SWAPPED,
    SemanticModel,
    check_training_image,
    predict_semantic,
    train_semantic,
)
from cellsight.core.segmentation.watershed import (
    maps_from_probabilities,
    watershed_instances,
    watershed_series,
)


@dataclass
class InstanceModel(SemanticModel):
    """A trained instance-segmentation network with its config and metadata.

    Its U-Net predicts background / foreground / boundary; :func:`segment_instances`
    turns that into separated objects. Made by :func:`train_instances`, or
    :func:`load_builtin` for the shipped nuclei model.

    Examples
    --------
    >>> model = InstanceModel.load("nuclei")  # a folder, a package or a built-in name
    >>> model.config.unet.out_channels
    3
    """

    config: InstanceConfig

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "InstanceModel":
        """Read an instance model folder, or a built-in model by name (``"nuclei"``).

        Raises
        ------
        ValueError
            If the folder is missing, not an instance model, or its weights do not fit.
        """
        from cellsight.core.nn.unet import UNet
        from cellsight.io.model_folder import load_model_folder
        from cellsight.io.bmz.read import is_package
        from cellsight.models import resolve_model

        if is_package(folder):  # a bioimage.io package cellsight exported
            from cellsight.core.bmz.run import native_of

            return native_of(folder, cls)

        found = load_model_folder(resolve_model(folder), task="instance")
        config = InstanceConfig.model_validate(found.config)
        net = UNet(config.unet)
        net.load_weights(found.state_dict, folder)
        return cls(config=config, net=net.eval(), meta=found.meta)


def load_builtin(name: str = "nuclei") -> InstanceModel:
    """Load a built-in instance model shipped with cellsight (no download).

    Examples
    --------
    >>> model = load_builtin("nuclei")
    >>> model.config.unet.depth, model.config.diameter  # the diameter it was trained at
    (4, 28.0)
    """
    from cellsight.models import builtin_model_dir

    return InstanceModel.load(builtin_model_dir(name))


@dataclass
class InstanceMaps:
    """Foreground and boundary probabilities ``([T,] *spatial)`` of one image."""

    foreground: np.ndarray
    boundary: np.ndarray
    has_time: bool = False


def _as_list(data) -> list[np.ndarray]:
    return [np.asarray(d) for d in data] if isinstance(data, list | tuple) else [np.asarray(data)]


def _frame_targets(labels, annotated, config: InstanceConfig) -> np.ndarray:
    width = config.targets.boundary_width / config.scale  # at the network's resolution
    targets = config.targets.model_copy(update={"boundary_width": max(1.0, width)})
    stack = labels.ndim == config.unet.ndim + 1
    if not stack:
        return instance_targets(labels, targets, annotated)
    masks = annotated if annotated is not None else [None] * len(labels)
    return np.stack([instance_targets(lb, targets, m) for lb, m in zip(labels, masks, strict=True)])


def instance_class_maps(
    labels: np.ndarray | Sequence[np.ndarray],
    config: InstanceConfig,
    annotated: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Training class maps (0 ignore, 1 background, 2 interior, 3 boundary) per label image.

    Label arrays with one axis more than the model's spatial dims are stacks
    (time or slices) and are handled frame by frame. ``annotated`` gives, per label
    image, where its labels are complete (None = everywhere).
    """
    labels = _as_list(labels)
    annotated = list(annotated) if annotated is not None else [None] * len(labels)
    if len(annotated) != len(labels):
        raise ValueError(f"{len(annotated)} annotated masks for {len(labels)} label images.")
    out = []
    for i, (lbl, ann) in enumerate(zip(labels, annotated, strict=True)):
        if lbl.ndim not in (config.unet.ndim, config.unet.ndim + 1):
            raise ValueError(
                f"Labels {i} have shape {lbl.shape}; the {config.unet.ndim}D model needs "
                f"{'Z, ' if config.unet.ndim == 3 else ''}Y, X, optionally with a leading "
                "stack axis."
            )
        if lbl.dtype.kind not in "iub":
            raise ValueError(f"Labels {i} must be integers; got dtype {lbl.dtype}.")
        out.append(_frame_targets(lbl, None if ann is None else np.asarray(ann, bool), config))
    return out


#: the median labelled object must have at least this many pixels to be learnt
MIN_OBJECT_PIXELS = 4


def check_instance_labels(
    labels: np.ndarray | Sequence[np.ndarray],
    annotated: Sequence[np.ndarray | None] | None = None,
) -> list[np.ndarray]:
    """Refuse instance labels a model cannot learn from; return them as integer arrays.

    Refused, with one line: labels that are not whole numbers or look like an intensity
    image (images and labels swapped), labels without any object (unless ``annotated``
    marks regions known to be empty), and objects of fewer than
    :data:`MIN_OBJECT_PIXELS` pixels (median).

    Raises
    ------
    ValueError
        Naming the problem.
    """
    checked = [as_labels(lbl, f"Labels {i}", SWAPPED) for i, lbl in enumerate(_as_list(labels))]
    areas = []
    for lbl in checked:
        top = int(lbl.max()) if lbl.size else 0
        if top < 1 << 20:  # ids of a label image: count them without sorting
            counts = np.bincount(lbl.ravel().astype(np.int64, copy=False), minlength=top + 1)
            areas.extend(counts[1:][counts[1:] > 0].tolist())
        else:
            ids, counts = np.unique(lbl, return_counts=True)
            areas.extend(counts[ids != 0].tolist())
    if not areas:
        if annotated is None:
            raise ValueError("The labels hold no objects (all 0): instance training needs "
                             "label images with one id per object (0 = background).")
        return checked
    median = float(np.median(areas))
    if median < MIN_OBJECT_PIXELS:
        raise ValueError(
            f"The labelled objects are too small to learn: {len(areas)} object(s) of median "
            f"size {median:g} pixel(s); objects need at least {MIN_OBJECT_PIXELS} pixels "
            "(label whole objects, or enlarge the images).")
    return checked


def train_instances(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    config: InstanceConfig | None = None,
    *,
    annotated: Sequence[np.ndarray | None] | None = None,
    out_dir: str | os.PathLike | None = None,
    init: "InstanceModel | str | os.PathLike | None" = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> InstanceModel:
    """Train (or fine-tune) an instance model from images and instance labels.

    Parameters
    ----------
    images : array or sequence of arrays
        As for :func:`cellsight.core.segmentation.semantic.train_semantic`.
    labels : array or sequence of arrays
        Instance labels (0 = background, one id per object), same spatial shapes.
    config : InstanceConfig, optional
    annotated : sequence of bool arrays or None, optional
        Per label image: where its labels are complete (e.g. from
        :func:`cellsight.core.segmentation.instance_targets.annotated_region`); elsewhere nothing is
        learned. None = fully annotated.
    out_dir : path, optional
        Model folder to write (best model whenever validation improves).
    init : InstanceModel, path or built-in name, optional
        Start from this model (fine-tuning); its architecture, normalisation and
        diameter are kept.
    progress, should_stop : callable
        See :func:`~cellsight.core.segmentation.semantic.train_semantic`.

    Returns
    -------
    InstanceModel

    Examples
    --------
    Two labelled discs, a tiny network and a few steps (real training: thousands):

    >>> from cellsight.config.training import TrainConfig
    >>> from cellsight.config.unet import UNetConfig
    >>> yy, xx = np.mgrid[:64, :64]
    >>> labels = (((yy - 20) ** 2 + (xx - 20) ** 2 < 64)
    ...           + 2 * ((yy - 44) ** 2 + (xx - 40) ** 2 < 64)).astype(np.uint16)
    >>> image = (labels > 0).astype(np.float32)
    >>> config = InstanceConfig(unet=UNetConfig(depth=2, base_channels=8, out_channels=3),
    ...                         training=TrainConfig(steps=4, batch_size=2, patch_size=32,
    ...                                              val_every=2, device="cpu"))
    >>> model = train_instances(image, labels, config)
    >>> round(model.config.diameter)  # the median object diameter of the labels, in pixels
    16
    """
    config = config or InstanceConfig()
    for i, image in enumerate(_as_list(images)):
        check_training_image(image, i)
    labels = check_instance_labels(labels, annotated)
    if init is not None:
        start = init if isinstance(init, InstanceModel) else InstanceModel.load(init)
        config = config.model_copy(
            update={"scale": start.config.scale, "diameter": start.config.diameter}
        )
        init = start
    targets = instance_class_maps(labels, config, annotated)
    if not config.diameter:
        found = median_diameter(_as_list(labels))
        config = config.model_copy(update={"diameter": round(found * config.scale, 1)})
    try:
        model = train_semantic(
            images, targets, config, out_dir=out_dir, init=init, progress=progress,
            should_stop=should_stop,
        )
    except Cancelled as exc:
        partial = exc.partial
        raise Cancelled(str(exc), partial=InstanceModel(
            config=partial.config, net=partial.net, meta=partial.meta)) from exc
    return InstanceModel(config=model.config, net=model.net, meta=model.meta)


def rescale_factor(model: InstanceModel, diameter: float) -> float:
    """Y/X resize factor for images whose objects are ``diameter`` pixels wide."""
    if diameter > 0 and model.config.diameter > 0:
        return float(model.config.diameter) / float(diameter)
    return float(model.config.scale)


def estimate_diameter(
    model: InstanceModel,
    image: np.ndarray,
    config: InstancePredictConfig | None = None,
    rounds: int = 4,
    should_stop: StopCallback = never_stop,
) -> float:
    """Typical object diameter (pixels) in one 2D image or 3D stack, measured by the model.

    The model first segments the image shrunk to half its own scale (objects up to
    about 4x the trained diameter stay whole there); the median diameter of what it
    finds sets the scale of the next pass, until a pass finds objects within 20% of
    the diameter it assumed (at most ``rounds`` passes). If the first scale finds
    nothing (very small objects), the search restarts at the model's own scale.
    Returns 0.0 if the model has no trained diameter or finds nothing.

    Examples
    --------
    Discs 40 px wide, measured by the built-in nuclei model:

    >>> yy, xx = np.mgrid[:160, :160]
    >>> image = sum(((yy - cy) ** 2 + (xx - cx) ** 2 < 20 ** 2)
    ...             for cy, cx in [(40, 40), (40, 115), (115, 70)]).astype(np.float32)
    >>> diameter = estimate_diameter(load_builtin("nuclei"), image)
    >>> 34 < diameter < 46
    True
    """
    config = (config or InstancePredictConfig()).model_copy(
        update={
            "estimate_diameter": False,
            "mode": f"{np.ndim(image)}d",
            "test_time_augmentation": False,  # a size estimate needs no polish
        }
    )
    target = model.config.diameter
    if target <= 0:
        return 0.0
    native = target / model.config.scale  # diameter that gets the model's own scale
    for start in (2.0 * native, native):
        found = _fixed_point(model, image, config, start, rounds, should_stop)
        if found > 0:
            return found
    return 0.0


def _fixed_point(model, image, config, assumed, rounds, should_stop) -> float:
    """Iterate ``assumed -> measured`` diameter; 0.0 when nothing is found."""
    found = 0.0
    for _ in range(rounds):
        config = config.model_copy(update={"diameter": assumed})
        maps = predict_instance_maps(model, image, config, should_stop=should_stop)
        # labels come back at the image's size: ``found`` is in the image's pixels
        found = median_diameter(instances_from_maps(maps, model.config.postprocessing))
        if found <= 0 or abs(np.log(found / assumed)) < np.log(1.2):
            break
        assumed = found
    return float(found)


def _frames(image: np.ndarray, mode: str, ndim_model: int) -> tuple[np.ndarray, bool]:
    """Image as a stack of model inputs and whether the first axis is time."""
    want = {"2d": 2, "3d": 3, "t": None}[mode]
    if mode == "t":
        if image.ndim not in (3, 4):
            raise ValueError(f"Mode 't' needs (T, Y, X) or (T, Z, Y, X); got shape {image.shape}.")
        return image, True
    if image.ndim != want:
        raise ValueError(f"Mode '{mode}' needs a {want}D image; got shape {image.shape}.")
    return image[None], False


def _predict_frame(model, frame, device, tile, progress, should_stop, tta=False):
    """Maps of one 2D image or 3D stack (a 2D model runs over a stack slice by slice)."""
    slicewise = frame.ndim == 3 and model.config.unet.ndim == 2
    if frame.ndim < model.config.unet.ndim:
        raise ValueError(f"A 3D model cannot segment a 2D image (shape {frame.shape}).")
    config = SemanticPredictConfig(
        timeseries=slicewise, tile_size=tile, device=device, test_time_augmentation=tta
    )
    pred = predict_semantic(model, frame, config, progress=progress, should_stop=should_stop)
    probs = np.moveaxis(pred.probabilities, 1, 0) if slicewise else pred.probabilities
    return maps_from_probabilities(probs)


def predict_instance_maps(
    model: InstanceModel,
    image: np.ndarray,
    config: InstancePredictConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> InstanceMaps:
    """Foreground and boundary probability maps of a 2D image, 3D stack or time series.

    Parameters
    ----------
    model : InstanceModel
    image : numpy.ndarray
        ``(Y, X)`` in mode ``2d``, ``(Z, Y, X)`` in mode ``3d`` (a 2D model runs slice
        by slice), ``(T, Y, X)`` or ``(T, Z, Y, X)`` in mode ``t`` (frame by frame).
    config : InstancePredictConfig, optional
        Mode, nucleus diameter (rescaling), tile size, device.
    progress, should_stop : callable
        A stop raises :class:`~cellsight.core.progress.Cancelled` with the finished
        frames' maps as ``partial`` (or None).

    Returns
    -------
    InstanceMaps
        Maps of the image's shape (float32).

    Examples
    --------
    Predict the maps once, then try thresholds without running the network again (what the
    dock's live sliders do):

    >>> from cellsight.config.instances import InstancePostConfig
    >>> yy, xx = np.mgrid[:96, :96]
    >>> image = (((yy - 30) ** 2 + (xx - 30) ** 2 < 225)
    ...          | ((yy - 64) ** 2 + (xx - 62) ** 2 < 225)).astype(np.float32)
    >>> maps = predict_instance_maps(load_builtin(), image, InstancePredictConfig(diameter=30))
    >>> maps.foreground.shape, maps.boundary.dtype
    ((96, 96), dtype('float32'))
    >>> int(instances_from_maps(maps, InstancePostConfig(mask_threshold=0.5)).max())
    2
    """
    config = config or InstancePredictConfig()
    frames, has_time = _frames(np.asarray(image), config.mode, model.config.unet.ndim)
    if config.estimate_diameter:
        found = estimate_diameter(model, frames[0], config, should_stop=should_stop)
        config = config.model_copy(update={"diameter": found, "estimate_diameter": False})
    factor = rescale_factor(model, config.diameter)
    scaled = InstanceModel(
        config=model.config.model_copy(update={"scale": factor}), net=model.net, meta=model.meta
    )
    fg = np.zeros(frames.shape, np.float32)
    bd = np.zeros(frames.shape, np.float32)
    for t, frame in enumerate(frames):

        def frame_progress(ev: ProgressEvent, t=t) -> None:
            total = max(ev.total, 1)
            progress(ProgressEvent(t * total + ev.step, len(frames) * total, "predicting"))

        try:
            fg[t], bd[t] = _predict_frame(
                scaled, frame, config.device, config.tile_size, frame_progress, should_stop,
                tta=config.test_time_augmentation,
            )
        except Cancelled as exc:
            partial = InstanceMaps(fg[:t], bd[:t], True) if has_time and t else None
            raise Cancelled(partial=partial) from exc
    if has_time:
        return InstanceMaps(fg, bd, True)
    return InstanceMaps(fg[0], bd[0], False)


def instances_from_maps(
    maps: InstanceMaps,
    config: InstancePostConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Run the seeded watershed on kept maps (frame by frame for time series).

    Examples
    --------
    Maps need not come from a network: one foreground blob cut by a boundary line
    gives two objects.

    >>> foreground = np.zeros((32, 32), np.float32)
    >>> foreground[8:24, 4:28] = 1.0
    >>> boundary = np.zeros_like(foreground)
    >>> boundary[:, 15:17] = 1.0
    >>> labels = instances_from_maps(InstanceMaps(foreground, boundary))
    >>> int(labels.max())
    2
    """
    if maps.has_time:
        return watershed_series(maps.foreground, maps.boundary, config, progress, should_stop)
    return watershed_instances(maps.foreground, maps.boundary, config)


def segment_instances(
    model: InstanceModel,
    image: np.ndarray,
    config: InstancePredictConfig | None = None,
    post: InstancePostConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Separated objects in one call: :func:`predict_instance_maps` + watershed.

    ``post`` defaults to the model's own post-processing parameters. Returns int32
    labels of the image's shape (ids consecutive per frame).

    Examples
    --------
    Two bright discs about 30 px wide:

    >>> yy, xx = np.mgrid[:128, :128]
    >>> image = (((yy - 40) ** 2 + (xx - 40) ** 2 < 15 ** 2)
    ...          | ((yy - 88) ** 2 + (xx - 90) ** 2 < 15 ** 2)).astype("float32")
    >>> model = load_builtin("nuclei")
    >>> labels = segment_instances(model, image, InstancePredictConfig(diameter=30))
    >>> labels.shape, int(labels.max())
    ((128, 128), 2)
    """
    maps = predict_instance_maps(model, image, config, progress, should_stop)
    return instances_from_maps(maps, post or model.config.postprocessing, should_stop=should_stop)
