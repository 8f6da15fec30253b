"""Noise2Void training on the noisy image itself, with checkpoints and a live preview.

The loss of a self-supervised model does not measure its quality (it stays high:
the noise cannot be predicted), so there is no "best" checkpoint: periodic and last
checkpoints are kept, and a preview crop lets the user judge by eye.
"""

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cellsight.config.n2v import N2VConfig
from cellsight.core.arrays.normalize import check_intensities
from cellsight.core.denoise.data import (
    Layout,
    PatchSampler,
    channel_stats,
    denormalise,
    fit_patch,
    make_layout,
    normalise,
)
from cellsight.core.denoise.masking import blind_spot_batch, masked_mse
from cellsight.core.denoise.model import N2VModel, unet_config_for
from cellsight.core.nn.device import select_device
from cellsight.core.nn.precision import autocast
from cellsight.core.nn.tiling import predict_tiled
from cellsight.core.nn.unet import UNet, size_divisor
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)

REPORT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class PreviewCrop:
    """The denoised preview region at one training step.

    Attributes
    ----------
    step : int
        Training steps done.
    data : numpy.ndarray
        Denoised crop with every axis of the training image (sample axes of length
        1), in the image's intensity units.
    origin : tuple of int
        Start of the crop along every axis of the training image.
    """

    step: int
    data: np.ndarray
    origin: tuple[int, ...]


PreviewCallback = Callable[[PreviewCrop], None]


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    check_intensities(image)  # a bool mask or complex numbers are no noisy image
    if image.size == 0:
        raise ValueError(f"The image is empty (shape {image.shape}); nothing to denoise.")
    if image.ndim < 2:
        raise ValueError(f"Need at least a 2D image; got shape {image.shape}.")
    if not np.all(np.isfinite(image)):
        raise ValueError("The image contains NaN or infinite values.")
    return image


def _cosine(step: int, total: int) -> float:
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


class _Run:
    """State of one training run (network, optimiser, data, histories)."""

    def __init__(self, image, config: N2VConfig, axes):
        self.config = config
        self.layout: Layout = make_layout(image, axes)
        raw = self.layout.to_canonical(image)
        self.mean, self.std = channel_stats(raw)
        self.data = normalise(raw, self.mean, self.std)
        ndim = self.data.ndim - 2
        self.net_config = unet_config_for(config, ndim, self.data.shape[1])
        wanted = (config.patch_size_z,) * (ndim - 2) + (config.patch_size,) * 2
        self.patch = fit_patch(self.data.shape[2:], wanted, size_divisor(self.net_config))
        self.rng = np.random.default_rng(config.seed)
        self.sampler = PatchSampler(self.data, self.patch, config.val_fraction, self.rng)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.device = select_device(config.device)
        self.net = UNet(self.net_config).to(self.device)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.optim, lambda s: _cosine(s, config.steps)
        )
        self.val_batch = self._fixed_val_batch()
        self.step = 0
        self.loss_ema: float | None = None
        self.history: list[tuple[int, float, float | None]] = []
        self.started = time.perf_counter()

    def _fixed_val_batch(self):
        if self.sampler.val is None:
            return None
        batch = torch.from_numpy(self.sampler.val)
        gen = torch.Generator().manual_seed(self.config.seed + 1)
        c = self.config
        inputs, mask = blind_spot_batch(
            batch, c.masked_fraction, c.variant, c.neighbourhood_radius, gen
        )
        return batch.to(self.device), inputs.to(self.device), mask.to(self.device)

    def train_step(self) -> float:
        c = self.config
        batch = torch.from_numpy(self.sampler.train_batch(c.batch_size, c.augment))
        inputs, mask = blind_spot_batch(
            batch, c.masked_fraction, c.variant, c.neighbourhood_radius, self.generator
        )
        batch, inputs, mask = (t.to(self.device) for t in (batch, inputs, mask))
        self.net.train()
        with autocast(self.device, self.config.mixed_precision):
            pred = self.net(inputs)
        loss = masked_mse(pred, batch, mask)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        self.sched.step()
        self.step += 1
        value = float(loss.detach())
        self.loss_ema = value if self.loss_ema is None else 0.9 * self.loss_ema + 0.1 * value
        return value

    def validate(self) -> float | None:
        if self.val_batch is None:
            return None
        target, inputs, mask = self.val_batch
        self.net.eval()
        with torch.inference_mode(), autocast(self.device, training=False):
            pred = self.net(inputs)
        self.net.train()
        return float(masked_mse(pred, target, mask))

    def model(self) -> N2VModel:
        net = UNet(self.net_config)
        net.load_state_dict({k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        meta = {
            "steps_done": self.step,
            "steps_planned": self.config.steps,
            "train_axes": self.layout.axes,
            "train_shape": list(self.layout.shape),
            "patch_shape": list(self.patch),
            "validation": self.sampler.val_kind,
            "history": [
                {"step": s, "loss": round(lo, 6), "val_loss": None if v is None else round(v, 6)}
                for s, lo, v in self.history
            ],
            "train_seconds": round(time.perf_counter() - self.started, 2),
        }
        return N2VModel(net=net.eval(), config=self.config, mean=self.mean, std=self.std,
                        meta=meta)


class _Preview:
    """Denoises a fixed crop of the training image with the current network."""

    def __init__(self, run: _Run, callback: PreviewCallback | None, every: int, size: int):
        self.run, self.callback, self.every = run, callback, max(1, every)
        data = run.data
        self.sample = data.shape[0] // 2
        spatial = data.shape[2:]
        crop = [min(size, s) for s in spatial]
        self.starts = [(s - c) // 2 for s, c in zip(spatial, crop, strict=True)]
        sl = tuple(slice(a, a + c) for a, c in zip(self.starts, crop, strict=True))
        self.crop = np.ascontiguousarray(data[(self.sample, slice(None), *sl)])

    def __call__(self, force: bool = False) -> None:
        if self.callback is None or (self.run.step % self.every and not force):
            return
        run = self.run
        pred = predict_tiled(run.net, self.crop, device=run.device)
        den = denormalise(pred[None], run.mean, run.std)[0]
        data, origin = run.layout.crop_to_original(den, self.sample, self.starts)
        self.callback(PreviewCrop(run.step, data, origin))


def _save(run: _Run, folder: Path | None, name: str) -> None:
    if folder is not None:
        run.model().save(folder / name)


def train_n2v(
    image: np.ndarray,
    config: N2VConfig | None = None,
    *,
    axes: str | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    preview: PreviewCallback | None = None,
    preview_every: int = 25,
    preview_size: int = 128,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> N2VModel:
    """Train a Noise2Void denoiser on a noisy image (no clean data needed).

    Parameters
    ----------
    image : numpy.ndarray
        The noisy image. Not modified.
    config : N2VConfig, optional
        Training parameters and device (defaults if omitted).
    axes : str, optional
        Axis letters of ``image`` from ``TCZYX`` (default ``YX``; required for more
        than 2 dimensions). T (time) frames are independent samples, C channels are
        input channels, Z makes the model 3D.
    checkpoint_dir : str or PathLike, optional
        Where to keep model folders ``step_NNNNNN`` every ``config.checkpoint_every``
        steps and ``last`` at the end (also after a stop).
    preview : callable, optional
        Called with a :class:`PreviewCrop` every ``preview_every`` steps and at the end.
    preview_every, preview_size : int
        Steps between previews; side of the (centred) preview crop in pixels.
    progress : callable
        Receives ``ProgressEvent(step, steps, "training", {"loss", "val_loss"})``.
    should_stop : callable
        Polled every step; on a stop the last checkpoint is saved and
        :class:`~cellsight.core.progress.Cancelled` is raised with the model as
        ``partial``.

    Returns
    -------
    N2VModel

    Raises
    ------
    ValueError
        If the image is not a valid noisy image for the axes given (dimensions,
        NaNs, constant channels, too small for the network).

    Examples
    --------
    >>> noisy = np.random.default_rng(0).normal(size=(32, 32)).astype("float32")
    >>> model = train_n2v(noisy, N2VConfig(steps=2, batch_size=2, patch_size=16))
    >>> model.meta["steps_done"]
    2
    """
    config = config or N2VConfig()
    run = _Run(_check_image(image), config, axes)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    show = _Preview(run, preview, preview_every, preview_size)
    last_report = 0.0
    while run.step < config.steps:
        if should_stop():
            _save(run, folder, "last")
            raise Cancelled("Training stopped; the last checkpoint is kept.", partial=run.model())
        loss = run.train_step()
        val = None
        periodic = run.step % config.checkpoint_every == 0
        if periodic or run.step == config.steps:
            val = run.validate()
            run.history.append((run.step, run.loss_ema, val))
        if periodic:
            _save(run, folder, f"step_{run.step:06d}")
        now = time.perf_counter()
        if val is not None or now - last_report >= REPORT_INTERVAL_S or run.step == config.steps:
            values = {"loss": run.loss_ema, "last_loss": loss}
            if run.history and run.history[-1][2] is not None:
                values["val_loss"] = run.history[-1][2]
            progress(ProgressEvent(run.step, config.steps, "training", values))
            last_report = now
        show(force=run.step == config.steps)
    _save(run, folder, "last")
    return run.model()
