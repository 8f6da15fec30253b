"""Semantic segmentation: train a U-Net on scribbles or masks, segment any image size.

Labels hold classes ``1..K``; 0 means "not annotated" and is ignored by the loss,
so a few strokes per class are enough. With ``zero_is_background`` the labels are
dense masks and 0 is the background class. Prediction is tiled (any 2D / 3D size)
and runs frame by frame over time series.
"""

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.config.semantic import SemanticConfig, SemanticPredictConfig
from cellsight.core.arrays.axes import to_frames
from cellsight.core.arrays.labels import as_labels
from cellsight.core.arrays.normalize import measure_normalization, normalize_channels
from cellsight.core.arrays.resize import resize_channels, resize_labels, scaled_shape, shrink_labels
from cellsight.core.curation.uncertainty import dihedral_views
from cellsight.core.nn.tiling import predict_tiled, tile_shape_for
from cellsight.core.nn.training import train_pixel_classifier
from cellsight.core.nn.unet import UNet
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)


@dataclass
class SemanticModel:
    """A trained semantic-segmentation network with its config and metadata.

    Made by :func:`train_semantic`; saved and read back as a model folder.

    Examples
    --------
    >>> import os, tempfile
    >>> from cellsight.config.unet import UNetConfig
    >>> net = UNet(UNetConfig(depth=2, base_channels=8, out_channels=3))
    >>> model = SemanticModel(SemanticConfig(n_classes=3, unet=net.config), net)
    >>> folder = model.save(os.path.join(tempfile.mkdtemp(), "membranes"))
    >>> SemanticModel.load(folder).config.n_classes
    3
    """

    config: SemanticConfig
    net: UNet
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | os.PathLike, *, keep_last: bool = False) -> Path:
        """Write the model folder (``config.yaml``, ``weights.pt``, ``meta.json``) as a unit.

        See :func:`cellsight.io.model_folder.save_model_folder`: an existing model there is
        replaced only once the new one is complete; its ``last.pt`` is kept with
        ``keep_last`` (training saving beside its own checkpoint), dropped otherwise.
        """
        from cellsight.io.model_folder import save_model_folder

        return save_model_folder(
            folder, self.config.model_dump(mode="json"), self.net.state_dict(), self.meta,
            keep_last=keep_last,
        )

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "SemanticModel":
        """Read a model folder written by :meth:`save` or by training.

        Raises
        ------
        ValueError
            If the folder is not a semantic model or its weights do not fit its config.
        """
        from cellsight.io.model_folder import load_model_folder

        from cellsight.io.bmz.read import is_package

        if is_package(folder):  # a bioimage.io package cellsight exported
            from cellsight.core.bmz.run import native_of

            return native_of(folder, cls)
        from cellsight.models import BUILTIN_MODELS

        if str(folder) in BUILTIN_MODELS and not Path(folder).is_dir():
            raise ValueError(f"{folder} is a built-in instance model, not a semantic model: "
                             "give a semantic model folder.")
        found = load_model_folder(folder, task="semantic")
        config = SemanticConfig.model_validate(found.config)
        net = UNet(config.unet)
        net.load_weights(found.state_dict, folder)
        return cls(config=config, net=net.eval(), meta=found.meta)


@dataclass
class SemanticPrediction:
    """Class probabilities ``([T,] K, *spatial)`` and labels ``([T,] *spatial)``."""

    probabilities: np.ndarray
    labels: np.ndarray


def _as_list(data) -> list[np.ndarray]:
    return [np.asarray(d) for d in data] if isinstance(data, list | tuple) else [np.asarray(data)]


#: without an explicit ``n_classes``, the labels may name classes 1..MAX_AUTO_CLASSES; more
#: (or one stray id far above the rest) means instance masks or a wrong file
MAX_AUTO_CLASSES = 50
#: smallest training image side (Y and X) in pixels
MIN_TRAIN_SIDE = 8

SWAPPED = "Were the images and the labels swapped?"


def _check_labels(labels: np.ndarray, index: int) -> np.ndarray:
    return as_labels(labels, f"Labels {index}", SWAPPED)


def check_training_image(image: np.ndarray, index: int) -> None:
    """Refuse a training image smaller than :data:`MIN_TRAIN_SIDE` in Y or X."""
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"Image {index} has shape {image.shape}; images have Y and X axes.")
    yx = image.shape[-2:]
    if min(yx) < MIN_TRAIN_SIDE:
        raise ValueError(f"Image {index} is {yx[0]}x{yx[1]} pixels; training needs images of at "
                         f"least {MIN_TRAIN_SIDE}x{MIN_TRAIN_SIDE}.")


def training_frames(images, labels, config: SemanticConfig):
    """Split images / labels into ``(C, *spatial)`` frames and class targets (0 = ignore).

    Arrays with one axis more than the model's spatial dims (plus channels) are
    stacks (time or slices) and are split into frames; frames without any
    annotation are dropped.
    """
    unet = config.unet
    images, labels = _as_list(images), _as_list(labels)
    if len(images) != len(labels) or not images:
        raise ValueError(f"Need one label image per image; got {len(images)} and {len(labels)}.")
    frames, targets = [], []
    for i, (img, lbl) in enumerate(zip(images, labels, strict=True)):
        lbl = _check_labels(lbl, i)
        check_training_image(img, i)
        stack = img.ndim == unet.ndim + 1 + (unet.in_channels > 1)
        f, _ = to_frames(img, unet.ndim, unet.in_channels, is_timeseries=stack)
        lb = lbl if stack else lbl[None]
        if lb.shape != (f.shape[0], *f.shape[2:]):
            raise ValueError(f"Labels {i} have shape {lbl.shape}; image {i} has {img.shape}.")
        for t in range(f.shape[0]):
            if config.zero_is_background or lb[t].any():
                frames.append(f[t])
                targets.append(lb[t].astype(np.int32) + (1 if config.zero_is_background else 0))
    if not frames:
        raise ValueError("The labels are empty (all 0): paint a few strokes for each class.")
    return frames, targets


def _check_auto_classes(config: SemanticConfig, targets: list[np.ndarray]) -> None:
    """Refuse label ids that are not a small dense set of classes (no ``n_classes`` given)."""
    offset = config.class_offset - 1  # target t is class t + offset
    top = max(int(t.max()) for t in targets)
    if top <= MAX_AUTO_CLASSES:
        return
    ids, counts = np.unique(np.concatenate([t.ravel() for t in targets]), return_counts=True)
    present = ids[ids != 0]
    n_top = int(counts[-1])
    largest = f"class {top + offset} on {n_top} pixel{'s' * (n_top != 1)}"
    if len(present) > MAX_AUTO_CLASSES:
        kind, advice = "look like instance masks", "for instance masks train an instance model"
    else:
        kind, advice = "hold a stray id", "remove the stray pixels"
    raise ValueError(
        f"The labels {kind}: {len(present)} different ids up to {top + offset} ({largest}); "
        f"semantic labels are classes 1..K with K <= {MAX_AUTO_CLASSES} (0 = not annotated): "
        f"{advice}, or give the number of classes (n_classes, --n-classes).")


def _resolve_classes(config: SemanticConfig, targets: list[np.ndarray]) -> SemanticConfig:
    if not config.n_classes:
        _check_auto_classes(config, targets)
    found = max(int(t.max()) for t in targets)
    n = config.n_classes or found
    if found > n:
        raise ValueError(
            f"The labels hold class {found - 1 + config.class_offset}; "
            f"the model has only {n} classes."
        )
    if n < 2:
        raise ValueError(
            "Need at least two classes: label 1..K strokes for K >= 2 classes, or set "
            "zero_is_background for a foreground/background mask."
        )
    unet = config.unet.model_copy(update={"out_channels": n})
    return config.model_copy(update={"n_classes": n, "unet": unet})


def _class_counts(targets: list[np.ndarray], n: int) -> list[int]:
    return [int(sum((t == c + 1).sum() for t in targets)) for c in range(n)]


def _init_state(init, resume: bool, config: SemanticConfig):
    """Config and start state from ``init`` (model or folder): architecture comes from it."""
    if init is None:
        return config, None
    from cellsight.io.model_folder import load_checkpoint

    model = init if isinstance(init, SemanticModel) else SemanticModel.load(init)
    if model.config.zero_is_background != config.zero_is_background:
        raise ValueError("The starting model and the labels disagree on 'zero_is_background'.")
    state = {"model": model.net.state_dict()}
    if resume and not isinstance(init, SemanticModel):
        last = load_checkpoint(init)
        if not last:
            raise ValueError(f"{init} has no last.pt (no training state to resume): leave out "
                             "resume to fine-tune from its weights.")
        state = last
    merged = config.model_copy(
        update={
            "unet": model.config.unet,
            "n_classes": model.config.n_classes,
            "normalization": model.config.normalization,
            "scale": model.config.scale,
        }
    )
    return merged, state


def train_semantic(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    config: SemanticConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    init: "SemanticModel | str | os.PathLike | None" = None,
    resume: bool = False,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> SemanticModel:
    """Train a semantic-segmentation U-Net from images and (sparse) label images.

    Parameters
    ----------
    images : array or sequence of arrays
        Images ``{Z}YX`` (``C{Z}YX`` for several channels), or stacks with a leading
        time / slice axis, which are split into frames.
    labels : array or sequence of arrays
        Same spatial shapes: 1..K = classes, 0 = not annotated (or background with
        ``config.zero_is_background``).
    config : SemanticConfig, optional
        Architecture, training and normalisation parameters.
    out_dir : path, optional
        Model folder to write; the best model is saved whenever validation
        improves, ``last.pt`` at every validation, so a stop or a crash keeps them.
    init : SemanticModel or path, optional
        Start from this model (fine-tuning); its architecture, classes, normalisation
        and scale are kept.
    resume : bool
        With a folder as ``init``: continue from its ``last.pt`` (weights and optimiser).
    progress, should_stop : callable
        Progress events carry ``{"loss", "val_loss"}``; a stop ends training early,
        saves the best weights so far (with ``out_dir``) and raises
        :class:`~cellsight.core.progress.Cancelled` with that model as ``partial``.

    Returns
    -------
    SemanticModel
        With ``meta`` holding the training summary and loss history.

    Examples
    --------
    Scribbles on a bright square (class 2) and on the background (class 1), a few steps:

    >>> from cellsight.config.training import TrainConfig
    >>> from cellsight.config.unet import UNetConfig
    >>> image = np.full((48, 48), 10.0, np.float32)
    >>> image[12:36, 12:36] = 200
    >>> strokes = np.zeros((48, 48), np.uint8)
    >>> strokes[20:28, 20:28], strokes[2:6, 2:46] = 2, 1
    >>> config = SemanticConfig(unet=UNetConfig(depth=2, base_channels=8),
    ...                         training=TrainConfig(steps=4, batch_size=2, patch_size=32,
    ...                                              val_every=2, device="cpu"))
    >>> model = train_semantic(image, strokes, config)
    >>> model.config.n_classes, predict_semantic(model, image).labels.shape
    (2, (48, 48))
    """
    config, state = _init_state(init, resume, config or SemanticConfig())
    frames, targets = training_frames(images, labels, config)
    config = _resolve_classes(config, targets)
    norm = config.normalization
    measured = measure_normalization(frames, norm.low, norm.high)
    norm = norm.model_copy(
        update={"low_values": list(measured.low_values), "high_values": list(measured.high_values)}
    )
    config = config.model_copy(update={"normalization": norm})
    inputs = [_scaled(normalize_frame(f, config), config.scale) for f in frames]
    soft = None
    if config.scale < 1.0 and config.soft_targets:
        values = list(range(1, config.n_classes + 1))
        shrunk = [
            shrink_labels(t, i.shape[1:], values) for t, i in zip(targets, inputs, strict=True)
        ]
        targets, soft = [s[0] for s in shrunk], [s[1] for s in shrunk]
    elif config.scale != 1.0:
        targets = [resize_labels(t, i.shape[1:]) for t, i in zip(targets, inputs, strict=True)]
    meta = {
        "training_data": {
            "frames": len(frames),
            "shapes": [list(f.shape) for f in frames],
            "annotated_pixels_per_class": _class_counts(targets, config.n_classes),
        }
    }
    on_checkpoint = _Checkpointer(out_dir, config, meta) if out_dir else None
    start = time.perf_counter()
    stopped = None
    try:
        result = train_pixel_classifier(
            inputs,
            targets,
            config.unet,
            config.training,
            init_state=state,
            soft_targets=soft,
            on_checkpoint=on_checkpoint,
            progress=progress,
            should_stop=should_stop,
        )
    except Cancelled as exc:  # keep (and save) what was trained, then say it stopped
        result, stopped = exc.partial, exc
    meta["metrics"] = {
        "best_step": result.best_step,
        "best_score": result.best_score,
        "steps_done": result.steps_done,
        "stop_reason": result.stop_reason,
        "averaged_snapshots": result.averaged_steps,
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": result.history,
    }
    model = SemanticModel(config=config, net=result.model, meta=meta)
    if out_dir:
        model.save(out_dir, keep_last=on_checkpoint.wrote_last)
    if stopped is not None:
        raise Cancelled("Training stopped; the model trained so far is kept.", partial=model)
    return model


class _Checkpointer:
    """Saves the best model and ``last.pt`` into ``out_dir`` during training.

    A ``last.pt`` already in the folder belongs to an earlier run: the best model is
    saved without it until this run has written its own.
    """

    def __init__(self, out_dir, config: SemanticConfig, meta: dict):
        self.out_dir, self.config, self.meta = out_dir, config, meta
        self.wrote_last = False

    def __call__(self, kind: str, payload: dict) -> None:
        from cellsight.io.model_folder import save_checkpoint, save_model_folder

        if kind == "best":
            save_model_folder(
                self.out_dir,
                self.config.model_dump(mode="json"),
                payload["model"],
                {**self.meta,
                 "metrics": {"best_step": payload["step"], "best_score": payload["score"]}},
                keep_last=self.wrote_last,
            )
        else:
            save_checkpoint(self.out_dir, payload)
            self.wrote_last = True


def normalize_frame(frame: np.ndarray, config: SemanticConfig) -> np.ndarray:
    """Percentile-normalise a ``(C, *spatial)`` frame as the model's config says."""
    norm = config.normalization
    values = None
    if norm.mode == "stored" and norm.low_values:
        values = list(zip(norm.low_values, norm.high_values, strict=True))
    return normalize_channels(frame, norm.low, norm.high, values)[0]


def _scaled(image: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return image
    return resize_channels(image, scaled_shape(image.shape[1:], factor))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from ``(K, ...)`` logits (float32)."""
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


def tiled_logits(net, x: np.ndarray, tta: bool, progress, **tiling) -> np.ndarray:
    """Logits of one normalised ``(C, *spatial)`` input (tiled; ``tiling`` as predict_tiled).

    With ``tta``: the log of the mean probabilities over the 8 flips / 90° rotations /
    transposes of Y and X.
    """
    if not tta:
        return predict_tiled(net, x, progress=progress, **tiling)
    views = dihedral_views(8)
    total = None
    for k, (forward, inverse) in enumerate(views):

        def view_progress(ev: ProgressEvent, k=k) -> None:
            n = max(ev.total, 1)
            progress(ProgressEvent(k * n + ev.step, len(views) * n, "test-time augmentation"))

        out = predict_tiled(net, np.ascontiguousarray(forward(x)), progress=view_progress, **tiling)
        p = softmax(np.ascontiguousarray(inverse(out)))
        total = p if total is None else total + p
    return np.log(np.clip(total / len(views), 1e-7, None))


def predict_semantic(
    model: SemanticModel,
    image: np.ndarray,
    config: SemanticPredictConfig | None = None,
    *,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> SemanticPrediction:
    """Segment an image of any size: class probabilities and argmax labels.

    Parameters
    ----------
    model : SemanticModel
    image : numpy.ndarray
        ``{Z}YX`` (``C{Z}YX`` for multi-channel models), or with a leading time axis
        when ``config.timeseries`` (or give ``config.axes``, e.g. ``"TYX"``, ``"ZCYX"``).
        Not modified.
    config : SemanticPredictConfig, optional
        Axes, time series, tile size and overlap, batch size, device, test-time
        augmentation (defaults if omitted).
    progress, should_stop : callable
        A stop raises :class:`~cellsight.core.progress.Cancelled` whose ``partial``
        holds the frames finished so far (or None).

    Returns
    -------
    SemanticPrediction
        ``probabilities`` float32 ``([T,] K, *spatial)``; ``labels`` uint8/uint16
        ``([T,] *spatial)`` with class ids (1..K, or 0..K-1 when 0 is background).

    Raises
    ------
    ValueError
        If the image does not fit the model (2D model on 3D data, channel count).

    Examples
    --------
    >>> from cellsight.config.semantic import SemanticConfig, SemanticPredictConfig
    >>> from cellsight.config.unet import UNetConfig
    >>> net = UNet(UNetConfig(depth=2, base_channels=8, out_channels=2))
    >>> model = SemanticModel(SemanticConfig(n_classes=2, unet=net.config), net)
    >>> frames = np.random.default_rng(0).random((3, 40, 48)).astype("float32")
    >>> config = SemanticPredictConfig(axes="TYX", tile_size=32, device="cpu")
    >>> result = predict_semantic(model, frames, config)
    >>> result.probabilities.shape, result.labels.shape
    ((3, 2, 40, 48), (3, 40, 48))
    """
    config = config or SemanticPredictConfig()
    tiling = {
        "tile_shape": tile_shape_for(config.tile_size, model.config.unet.ndim),
        "overlap": config.overlap or None,
        "batch_size": config.batch_size,
        "device": config.device,
    }
    tta = config.test_time_augmentation
    trained = model.config
    frames, has_time = to_frames(
        image, trained.unet.ndim, trained.unet.in_channels, config.axes or None, config.timeseries
    )
    probs, labels = [], []
    dtype = np.uint8 if trained.n_classes + trained.class_offset <= 255 else np.uint16
    for t, frame in enumerate(frames):

        def frame_progress(ev: ProgressEvent, t=t) -> None:
            progress(
                ProgressEvent(
                    t * ev.total + ev.step, len(frames) * ev.total, f"frame {t + 1}/{len(frames)}"
                )
            )

        try:
            logits = tiled_logits(
                model.net,
                _scaled(normalize_frame(frame, trained), trained.scale),
                tta,
                frame_progress,
                should_stop=should_stop,
                **tiling,
            )
        except Cancelled as exc:
            done = SemanticPrediction(np.stack(probs), np.stack(labels)) if probs else None
            raise Cancelled(partial=done) from exc
        p = softmax(resize_channels(logits, frame.shape[1:]))
        probs.append(p)
        labels.append((np.argmax(p, axis=0) + trained.class_offset).astype(dtype))
    if has_time:
        return SemanticPrediction(np.stack(probs), np.stack(labels))
    return SemanticPrediction(probs[0], labels[0])
