"""Training loop of a U-Net pixel classifier on sparse or dense class maps.

Targets hold classes ``1..K``; 0 means "not annotated" and is ignored by the loss.
The loop samples annotation-biased patches, augments them, minimises cross-entropy +
Dice over annotated pixels, validates on held-out stripes, keeps the best and the
last weights, stops early when validation stops improving and, on a stop request,
raises :class:`~cellsight.core.progress.Cancelled` with what it has (the last
checkpoint is kept).
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cellsight.config.training import TrainConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.nn.augment import augment
from cellsight.core.nn.device import select_device
from cellsight.core.nn.losses import segmentation_loss
from cellsight.core.nn.patches import (
    PatchSampler,
    split_validation,
    to_internal,
    validation_patches,
)
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

CheckpointCallback = Callable[[str, dict[str, Any]], None]
REPORT_INTERVAL_S = 0.1
AVERAGE_EVERY = 5  # steps between weight-averaging updates
BN_BATCHES = 16  # training batches that set the averaged model's batch-norm statistics
MINING_BUDGET = 0.1  # most of the training time spent finding hard pixels


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    model : UNet
        The network with the best weights loaded, on the CPU, in eval mode.
    last_state : dict
        ``{"model", "optimizer", "step"}`` of the last step (for resuming).
    history : list of dict
        ``{"step", "loss", "val_loss"}`` at every validation.
    best_step : int
    stop_reason : str
        ``"completed"``, ``"early_stop"``, ``"time_limit"`` or ``"cancelled"``.
    """

    model: UNet
    last_state: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    best_step: int = 0
    best_score: float = math.inf
    steps_done: int = 0
    stop_reason: str = "completed"
    averaged_steps: int = 0


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
    }


def memory_format_for(ndim: int) -> torch.memory_format:
    """Channels-last layout (faster convolutions with oneDNN and cuDNN) for 2D or 3D data."""
    return torch.channels_last if ndim == 2 else torch.channels_last_3d


def patch_shape_for(
    config: TrainConfig, unet: UNetConfig, shapes: Sequence[tuple[int, ...]]
) -> tuple[int, ...]:
    """Training patch shape: the configured size, no larger than the images, on the divisor."""
    d = size_divisor(unet)
    wanted = (config.patch_size,) * 2
    if unet.ndim == 3:
        wanted = (config.patch_size_z, *wanted)
    largest = [max(s[a] for s in shapes) for a in range(unet.ndim)]
    return tuple(-(-min(w, m) // d) * d for w, m in zip(wanted, largest, strict=True))


def _check_data(images, targets, unet: UNetConfig) -> None:
    if len(images) != len(targets) or not images:
        raise ValueError(f"Need matching images and labels; got {len(images)} and {len(targets)}.")
    for i, (img, tgt) in enumerate(zip(images, targets, strict=True)):
        if img.ndim != unet.ndim + 1 or img.shape[0] != unet.in_channels:
            raise ValueError(
                f"Image {i} has shape {img.shape}; the {unet.ndim}D model needs "
                f"({unet.in_channels}, {'Z, ' if unet.ndim == 3 else ''}Y, X)."
            )
        if tgt.shape != img.shape[1:]:
            raise ValueError(f"Labels {i} have shape {tgt.shape}, the image {img.shape[1:]}.")
        if tgt.size and (tgt.min() < 0 or tgt.max() > unet.out_channels):
            raise ValueError(
                f"Labels {i} hold values outside 0..{unet.out_channels} (0 = not annotated, "
                f"1..{unet.out_channels} = classes)."
            )


def _check_soft(soft, targets, unet: UNetConfig) -> None:
    if len(soft) != len(targets):
        raise ValueError(f"Need one soft target per label map; got {len(soft)} for {len(targets)}.")
    for i, (s, t) in enumerate(zip(soft, targets, strict=True)):
        if s.shape != (unet.out_channels, *t.shape):
            raise ValueError(
                f"Soft target {i} has shape {s.shape}; expected {(unet.out_channels, *t.shape)} "
                "(one share per class over the label map's shape)."
            )
        if not np.isfinite(s).all():
            raise ValueError(f"Soft target {i} holds NaN or infinite values.")


class _Batches:
    """Augmented training batches as tensors on the device.

    With soft targets the sampler's images carry the class fractions as extra
    channels after the ``channels`` image channels, so crops, flips, rotations and
    deformations move them with the image; they are split off here.
    """

    def __init__(self, sampler: PatchSampler, config: TrainConfig, device, rng, layout, channels):
        self.sampler, self.config, self.device, self.rng = sampler, config, device, rng
        self.layout, self.channels = layout, channels

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        pairs = [
            augment(*self.sampler.sample(), self.config, self.rng, channels=self.channels)
            for _ in range(self.config.batch_size)
        ]
        stacked = np.stack([p[0] for p in pairs])
        x = torch.from_numpy(stacked[:, : self.channels]).to(self.device, memory_format=self.layout)
        y = torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64)).to(self.device)
        soft = None
        if stacked.shape[1] > self.channels:
            soft = torch.from_numpy(np.ascontiguousarray(stacked[:, self.channels :]))
            soft = soft.to(self.device)
        return x, y, soft


class _HardPixels:
    """Finds the training pixels the model gets wrong, for the sampler to revisit.

    At every validation point it predicts training images in turn (whole images,
    tiled) and marks their annotated pixels whose predicted class is wrong as hard, as
    long as the time spent doing so stays under ``MINING_BUDGET`` of the training time.
    A stop request interrupts it (the training loop then ends as usual).
    """

    def __init__(self, sampler: PatchSampler, config: TrainConfig, device, channels, should_stop):
        self.sampler, self.config, self.device, self.channels = sampler, config, device, channels
        self.should_stop = should_stop
        self.next_image = 0
        self.spent = 0.0

    def refresh(self, model, elapsed: float) -> None:
        if not self.config.hard_mining:
            return
        n = len(self.sampler.targets)
        for _ in range(n):
            if self.spent > MINING_BUDGET * elapsed:
                break
            started = time.monotonic()
            k = self.next_image
            image, target = self.sampler.images[k][: self.channels], self.sampler.targets[k]
            try:
                logits = predict_tiled(
                    model,
                    image,
                    device=self.device,
                    amp=self.config.mixed_precision,
                    should_stop=self.should_stop,
                )
            except Cancelled:
                return
            self.sampler.set_hard(k, (target >= 0) & (logits.argmax(0) != target))
            self.next_image = (k + 1) % n
            self.spent += time.monotonic() - started


def _validate(model, val, config: TrainConfig, device, layout) -> float:
    images, targets = val
    batch_size = config.batch_size
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(images[i : i + batch_size]).to(device, memory_format=layout)
            y = torch.from_numpy(targets[i : i + batch_size].astype(np.int64)).to(device)
            with autocast(device, config.mixed_precision):
                loss = segmentation_loss(model(x), y, config.dice_weight)
            total += float(loss) * len(x)
    model.train()
    return total / len(images)


class _Loop:
    """State of one training run (kept small so each method stays readable)."""

    def __init__(self, model, config: TrainConfig, device, on_checkpoint, progress, layout):
        self.model, self.config, self.device, self.layout = model, config, device, layout
        self.on_checkpoint, self.progress = on_checkpoint, progress
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.started = time.monotonic()
        self.steps_done = 0
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda _: 0.05 + 0.475 * (1 + math.cos(math.pi * self.fraction_done()))
        )
        self.result = TrainResult(model=model, last_state={})
        self.averaged: torch.optim.swa_utils.AveragedModel | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.ema: float | None = None
        self.bad_checks = 0
        self.last_report = 0.0
        self.anchor: list[torch.Tensor] | None = None

    def fraction_done(self) -> float:
        """Share of the run done: steps or time, whichever is further along."""
        frac = self.steps_done / self.config.steps
        if self.config.time_limit_minutes:
            elapsed = (time.monotonic() - self.started) / 60.0
            frac = max(frac, elapsed / self.config.time_limit_minutes)
        return min(1.0, frac)

    def load_optimizer(self, state: dict | None) -> None:
        if not state:
            return
        try:
            self.opt.load_state_dict(state)
        except (ValueError, KeyError):
            return  # a different architecture: start the optimiser afresh
        for group in self.opt.param_groups:
            group["lr"] = group["initial_lr"] = self.config.learning_rate

    def step(self, x, y, soft=None) -> float:
        with autocast(self.device, self.config.mixed_precision):
            logits = self.model(x)
        loss = segmentation_loss(logits, y, self.config.dice_weight, soft)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._pull_to_anchor()
        self.steps_done += 1
        self.sched.step()
        self._average()
        value = float(loss.detach())
        self.ema = value if self.ema is None else 0.95 * self.ema + 0.05 * value
        return value

    def set_anchor(self) -> None:
        """Remember the current (starting) weights for ``config.anchor_weight``."""
        if self.config.anchor_weight > 0:
            self.anchor = [p.detach().clone() for p in self.model.parameters()]

    @torch.no_grad()
    def _pull_to_anchor(self) -> None:
        """L2-SP, decoupled: w <- w - lr * anchor_weight * (w - w_start)."""
        if self.anchor is None:
            return
        lr = self.opt.param_groups[0]["lr"]
        shrink = min(1.0, lr * self.config.anchor_weight)
        for p, a in zip(self.model.parameters(), self.anchor, strict=True):
            p.lerp_(a, shrink)  # = p - shrink * (p - a), in place

    def _average(self) -> None:
        """Running mean of the weights over the last part of training (when configured)."""
        cfg = self.config
        if not cfg.weight_averaging or self.fraction_done() < 1.0 - cfg.weight_averaging:
            return
        if self.averaged is None:
            self.averaged = torch.optim.swa_utils.AveragedModel(self.model)
        if self.steps_done % AVERAGE_EVERY == 0:
            self.averaged.update_parameters(self.model)
            self.result.averaged_steps += 1

    def report(self, step: int, values: dict, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_report >= REPORT_INTERVAL_S:
            self.last_report = now
            self.progress(ProgressEvent(step, self.config.steps, "training", values))

    def checkpoint_last(self, step: int) -> None:
        self.result.last_state = {
            "model": _state_copy(self.model),
            "optimizer": self.opt.state_dict(),
            "step": step,
        }
        if self.on_checkpoint is not None:
            self.on_checkpoint("last", self.result.last_state)

    def evaluate(self, step: int, val, hard: _HardPixels | None = None) -> bool:
        """Validate, keep the best weights; return True when it is time to stop early."""
        cfg = self.config
        if hard is not None:
            hard.refresh(self.model, time.monotonic() - self.started)
        val_loss = (
            _validate(self.model, val, cfg, self.device, self.layout)
            if val is not None
            else None
        )
        score = val_loss if val_loss is not None else float(self.ema)
        self.result.history.append({"step": step, "loss": float(self.ema), "val_loss": val_loss})
        self.report(step, {"loss": float(self.ema), "val_loss": val_loss}, force=True)
        if score < self.result.best_score - 1e-4:
            self.result.best_score, self.result.best_step = score, step
            self.best_state = _state_copy(self.model)
            self.bad_checks = 0
            if self.on_checkpoint is not None:
                self.on_checkpoint("best", {"model": self.best_state, "step": step, "score": score})
        else:
            self.bad_checks += 1
        self.checkpoint_last(step)
        return bool(cfg.patience) and self.bad_checks >= cfg.patience

    def finish(self, batches=None) -> TrainResult:
        if self.averaged is not None and self.result.averaged_steps and batches is not None:
            # averaged weights need batch-norm statistics of their own
            inputs = [batches.next()[0] for _ in range(BN_BATCHES)]
            torch.optim.swa_utils.update_bn(inputs, self.averaged, device=self.device)
            self.model.load_state_dict(self.averaged.module.state_dict())
        elif self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.to("cpu", memory_format=torch.contiguous_format).eval()
        return self.result


def _prepare_data(images, targets, unet_config, config, rng, soft=None):
    """Patch sampler over the training stripes and fixed validation patches (or None).

    ``soft`` class fractions ride along as extra image channels (see :class:`_Batches`);
    validation uses the hard classes only.
    """
    patch = patch_shape_for(config, unet_config, [t.shape for t in targets])
    train_t, val_t = split_validation([to_internal(t) for t in targets], config.val_fraction)
    val = validation_patches(images, val_t, patch, rng) if val_t else None
    if soft is not None:
        images = [np.concatenate([i, s]) for i, s in zip(images, soft, strict=True)]
    sampler = PatchSampler(
        images,
        train_t,
        patch,
        unet_config.out_channels,
        config.annotated_fraction,
        rng,
        hard_fraction=config.hard_mining,
    )
    return sampler, val


def _run(loop: _Loop, batches: _Batches, val, should_stop: StopCallback, hard=None) -> int:
    """Step until done, out of time, early-stopped or stopped; return the steps done."""
    config, step = loop.config, 0
    for step in range(1, config.steps + 1):
        if should_stop():
            loop.result.stop_reason = "cancelled"
            step -= 1
            break
        loop.report(step, {"loss": loop.step(*batches.next())})
        out_of_time = loop.fraction_done() >= 1.0 and step < config.steps
        if step % config.val_every == 0 or step == config.steps or out_of_time:
            last = out_of_time or step == config.steps  # no more patches to steer
            if loop.evaluate(step, val, None if last else hard):
                loop.result.stop_reason = "early_stop"
                break
        if out_of_time:
            loop.result.stop_reason = "time_limit"
            break
    if loop.result.stop_reason == "cancelled":
        if loop.best_state is None and loop.ema is not None:
            loop.evaluate(step, val)  # keeps these weights as the best so far
        else:
            loop.checkpoint_last(step)
    return step


def train_pixel_classifier(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    unet_config: UNetConfig,
    config: TrainConfig,
    *,
    init_state: dict | None = None,
    soft_targets: Sequence[np.ndarray] | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> TrainResult:
    """Train a U-Net to classify pixels from (sparse) class maps.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        ``(C, *spatial)`` float32 images, already normalised.
    targets : sequence of numpy.ndarray
        Integer class maps of the images' spatial shape: 0 = not annotated (ignored),
        ``1..K`` = classes, ``K = unet_config.out_channels``.
    unet_config : UNetConfig
    config : TrainConfig
    init_state : dict, optional
        ``{"model": state_dict, "optimizer": state_dict}`` to start from (fine-tuning or
        resuming); the optimiser state is used when it fits.
    soft_targets : sequence of numpy.ndarray, optional
        ``(K, *spatial)`` share of each pixel covered by each class (e.g. label maps
        shrunk to a model's scale); the loss then learns these shares instead of the
        hard classes, over the pixels ``targets`` marks as annotated.
    on_checkpoint : callable, optional
        ``on_checkpoint(kind, payload)`` with kind ``"best"`` (``{"model", "step",
        "score"}``) or ``"last"`` (``{"model", "optimizer", "step"}``), e.g. to save them.
    progress : callable
        Receives ``ProgressEvent(step, steps, "training", {"loss", "val_loss"})``.
    should_stop : callable
        Polled every step; when True the run ends, keeping the last checkpoint, and
        :class:`~cellsight.core.progress.Cancelled` is raised with the result so far
        as ``partial``.

    Returns
    -------
    TrainResult
    """
    images = [np.asarray(i, np.float32) for i in images]
    targets = [np.asarray(t) for t in targets]
    _check_data(images, targets, unet_config)
    if soft_targets is not None:
        soft_targets = [np.asarray(s, np.float32) for s in soft_targets]
        _check_soft(soft_targets, targets, unet_config)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    device = select_device(config.device)
    model = UNet(unet_config)
    if init_state and init_state.get("model"):
        model.load_state_dict(init_state["model"])
    layout = memory_format_for(unet_config.ndim)
    model.to(device, memory_format=layout).train()
    sampler, val = _prepare_data(images, targets, unet_config, config, rng, soft_targets)
    batches = _Batches(sampler, config, device, rng, layout, unet_config.in_channels)
    loop = _Loop(model, config, device, on_checkpoint, progress, layout)
    loop.load_optimizer((init_state or {}).get("optimizer"))
    if init_state and init_state.get("model"):
        loop.set_anchor()
    hard = _HardPixels(sampler, config, device, unet_config.in_channels, should_stop)
    try:
        step = _run(loop, batches, val, should_stop, hard)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    loop.result.steps_done = step
    if loop.result.stop_reason == "cancelled":
        raise Cancelled("Training stopped; the best weights so far are kept.",
                        partial=loop.finish(None))
    return loop.finish(batches)
