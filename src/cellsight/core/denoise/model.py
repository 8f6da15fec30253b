"""A trained Noise2Void model: network, parameters and normalisation, saved as a folder.

The folder holds ``config.yaml`` (the N2V and U-Net parameter sets and the per-channel
mean / standard deviation used to normalise the training image), ``weights.pt`` (the
state dict, loaded with ``weights_only=True``) and ``meta.json`` (training summary).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.arrays.normalize import check_intensities
from cellsight.core.denoise.data import SPATIAL_AXES, denormalise, make_layout, normalise
from cellsight.core.nn.tiling import predict_tiled, tile_shape_for
from cellsight.core.nn.unet import UNet
from cellsight.core.progress import (
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.io.model_folder import ModelFolderError, load_model_folder, save_model_folder

MODEL_TASK = "n2v"


def unet_config_for(config: N2VConfig, ndim: int, channels: int) -> UNetConfig:
    """The U-Net architecture of an N2V (or N2V2) model with ``channels`` in and out."""
    n2v2 = config.variant == "n2v2"
    return UNetConfig(
        ndim=ndim,
        in_channels=channels,
        out_channels=channels,
        depth=config.depth,
        base_channels=config.base_channels,
        norm="none",
        upsampling="resize" if n2v2 else "transposed",
        blurpool=n2v2,
        top_skip=not n2v2,
    )


@dataclass
class N2VModel:
    """A Noise2Void denoiser.

    Attributes
    ----------
    net : UNet
        The network (maps normalised noisy to normalised denoised values).
    config : N2VConfig
        The training parameters.
    mean, std : tuple of float
        Per-channel normalisation measured on the training image.
    meta : dict
        Training summary (steps done, losses, training image shape and axes).

    Examples
    --------
    Made by :func:`~cellsight.core.denoise.train.train_n2v`; saved and read back as a folder:

    >>> import os, tempfile
    >>> from cellsight.config.n2v import N2VConfig
    >>> config = N2VConfig(depth=1, base_channels=4)
    >>> model = N2VModel(UNet(unet_config_for(config, ndim=2, channels=1)), config,
    ...                  mean=(100.0,), std=(12.0,))
    >>> folder = model.save(os.path.join(tempfile.mkdtemp(), "n2v"))
    >>> load_model(folder).mean
    (100.0,)
    """

    net: UNet
    config: N2VConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]
    meta: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        """Spatial dimensions the model works on (2 or 3)."""
        return self.net.config.ndim

    @property
    def channels(self) -> int:
        """Number of image channels the model takes."""
        return self.net.config.in_channels

    def config_dict(self) -> dict:
        """Everything ``config.yaml`` holds."""
        return {
            "task": MODEL_TASK,
            "n2v": self.config.model_dump(),
            "unet": self.net.config.model_dump(),
            "normalisation": {"mean": list(self.mean), "std": list(self.std)},
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the model folder as a unit (see ``save_model_folder``); return its path."""
        return save_model_folder(folder, self.config_dict(), self.net.state_dict(), self.meta)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "N2VModel":
        """Read a model folder written by :meth:`save`.

        Raises
        ------
        cellsight.io.model_folder.ModelFolderError
            (a ValueError) If the folder is not an N2V model or its files are
            inconsistent.
        """
        from cellsight.io.bmz.read import is_package

        if is_package(folder):  # a bioimage.io package cellsight exported
            from cellsight.core.bmz.run import native_of

            return native_of(folder, cls)
        from cellsight.models import BUILTIN_MODELS

        if str(folder) in BUILTIN_MODELS and not Path(folder).is_dir():
            raise ModelFolderError(f"{folder} is a built-in segmentation model, not a Noise2Void "
                                   "model: give a folder saved by a denoising run (--save-model).")
        found = load_model_folder(folder, task=MODEL_TASK)
        cfg = found.config
        try:
            net = UNet(UNetConfig.model_validate(cfg["unet"]))
            net.load_weights(found.state_dict, folder)
            norm = cfg["normalisation"]
        except (KeyError, RuntimeError) as exc:
            raise ModelFolderError(f"The N2V model in {folder} is inconsistent: {exc}") from exc
        return cls(
            net=net.eval(),
            config=N2VConfig.model_validate(cfg["n2v"]),
            mean=tuple(float(v) for v in norm["mean"]),
            std=tuple(float(v) for v in norm["std"]),
            meta=found.meta,
        )


def _check_fits(model: N2VModel, layout) -> None:
    spatial = [a for a in layout.axes if a in SPATIAL_AXES]
    if len(spatial) != model.ndim:
        raise ValueError(
            f"This N2V model is {model.ndim}D but the image axes {layout.axes!r} have "
            f"{len(spatial)} spatial dimension(s)."
        )
    channels = layout.canonical_shape[1]
    if channels != model.channels:
        raise ValueError(
            f"This N2V model takes {model.channels} channel(s); the image has {channels}."
        )


def denoise(
    model: N2VModel,
    image: np.ndarray,
    config: DenoisePredictConfig | None = None,
    *,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Denoise ``image`` with a trained N2V model (seamless tiled prediction).

    Parameters
    ----------
    model : N2VModel
    image : numpy.ndarray
        Noisy image with the axes of ``config.axes``. Not modified.
    config : DenoisePredictConfig, optional
        Axes (default ``YX`` for 2D arrays; sample axes such as T are denoised frame by
        frame, channel axes must match the model), tile size, batch size, device.
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    numpy.ndarray of float32
        Same shape and axes as ``image``, in the image's intensity units.

    Raises
    ------
    ValueError
        If the image does not fit the model (dimensions, channels) or has NaNs.

    Examples
    --------
    >>> from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
    >>> net = UNet(unet_config_for(N2VConfig(depth=1, base_channels=4), ndim=2, channels=1))
    >>> model = N2VModel(net, N2VConfig(depth=1, base_channels=4), mean=(0.0,), std=(1.0,))
    >>> frames = np.random.default_rng(0).normal(size=(2, 24, 24)).astype("float32")
    >>> denoise(model, frames, DenoisePredictConfig(axes="TYX", device="cpu")).shape
    (2, 24, 24)
    """
    config = config or DenoisePredictConfig()
    axes = config.axes or None
    image = np.asarray(image)
    check_intensities(image)
    if image.size == 0:
        raise ValueError(f"The image is empty (shape {image.shape}); nothing to denoise.")
    layout = make_layout(image, axes)
    _check_fits(model, layout)
    if not np.all(np.isfinite(image)):
        raise ValueError("The image contains NaN or infinite values.")
    data = layout.to_canonical(image)
    out = np.empty(data.shape, np.float32)
    n = data.shape[0]
    for s in range(n):

        def tiles_done(event: ProgressEvent, s=s) -> None:
            total = event.total * n
            progress(ProgressEvent(s * event.total + event.step, total, "denoising"))

        norm = normalise(data[s : s + 1], model.mean, model.std)[0]
        pred = predict_tiled(
            model.net,
            norm,
            tile_shape=tile_shape_for(config.tile_size, model.ndim),
            batch_size=config.batch_size,
            device=config.device,
            progress=tiles_done,
            should_stop=should_stop,
        )
        out[s] = denormalise(pred[None], model.mean, model.std)[0]
    return np.ascontiguousarray(layout.from_canonical(out))


def load_model(folder: str | os.PathLike) -> N2VModel:
    """Read an N2V model folder (see :meth:`N2VModel.load`)."""
    return N2VModel.load(folder)

