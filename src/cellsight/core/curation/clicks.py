"""Click to segment: a click on an object gives its mask; more clicks refine it.

A small U-Net (the built-in ``clicks`` model, or one trained by
``scripts/train_click_model.py``) sees a square window of the image around the
object, resized to ``crop_size`` pixels, plus three prompt channels: positive clicks,
negative clicks (discs) and the previous mask. It returns the mask of the object.

The window follows the object: a first click uses a window of ``first_window`` image
pixels centred on it; when the mask fills that window it grows, when the object is
small it zooms in, so the network always sees the object at about the same scale
(``context`` times its size). Later clicks use the window around the current mask.

Only the window is computed, so a click costs the same on a 1024 x 1024 image as on a
64 x 64 one. :class:`ClickSession` keeps the state of one object between clicks (the
dock uses it); :func:`segment_from_clicks` is the one-call, headless twin.

In 3D (``mode="3d"``) the object clicked on one slice is followed to the neighbouring
slices, each seeded by the mask of the slice before, until it ends; in a time series
:func:`follow` seeds the next frame from the current mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from cellsight.config.clicks import ClickConfig, ClickModelConfig
from cellsight.core.arrays.normalize import check_intensities
from cellsight.core.nn.device import select_device
from cellsight.core.nn.unet import UNet
from cellsight.core.progress import ProgressCallback, StopCallback, never_stop, no_progress
from cellsight.io.model_folder import ModelFolderError, load_model_folder, save_model_folder
from cellsight.models import resolve_model


@dataclass(frozen=True)
class Click:
    """One click: image coordinates ``(y, x)`` (``z`` / ``t`` for stacks), positive or not."""

    y: float
    x: float
    positive: bool = True
    z: int | None = None


@dataclass
class Window:
    """A square window of the image: top-left corner ``(y0, x0)`` and side, in pixels."""

    y0: int
    x0: int
    side: int

    def to_crop(self, y: float, x: float, crop: int) -> tuple[float, float]:
        """Image coordinates -> coordinates in the resized ``crop`` x ``crop`` window."""
        s = crop / self.side
        return (y - self.y0 + 0.5) * s - 0.5, (x - self.x0 + 0.5) * s - 0.5


def window_around(cy: float, cx: float, side: float) -> Window:
    """The square window of ``side`` pixels centred on ``(cy, cx)``."""
    side = max(8, int(round(side)))
    return Window(int(round(cy - side / 2)), int(round(cx - side / 2)), side)


def box_window(mask: np.ndarray, points: Sequence[tuple[float, float]], context: float,
               min_side: int = 24) -> Window:
    """Window ``context`` times the size of the box around ``mask`` and ``points``."""
    ys, xs = [], []
    if mask is not None and mask.any():
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        ys += [rows[0], rows[-1] + 1]
        xs += [cols[0], cols[-1] + 1]
    for y, x in points:
        ys += [y, y + 1]
        xs += [x, x + 1]
    y0, y1, x0, x1 = min(ys), max(ys), min(xs), max(xs)
    side = max(y1 - y0, x1 - x0) * context
    return window_around((y0 + y1) / 2, (x0 + x1) / 2, max(side, min_side))


def cut(array: np.ndarray, window: Window, fill: float = 0.0) -> np.ndarray:
    """The window's pixels of a 2D array (float32), padded with ``fill`` outside it."""
    h, w = array.shape
    out = np.full((window.side, window.side), fill, np.float32)
    ya, xa = max(window.y0, 0), max(window.x0, 0)
    yb, xb = min(window.y0 + window.side, h), min(window.x0 + window.side, w)
    if ya < yb and xa < xb:
        out[ya - window.y0:yb - window.y0, xa - window.x0:xb - window.x0] = array[ya:yb, xa:xb]
    return out


def resize2d(array: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a square 2D array to ``size`` x ``size`` (antialiased when shrinking)."""
    t = torch.as_tensor(np.asarray(array, np.float32))[None, None]
    if t.shape[-1] == size and t.shape[-2] == size:
        return t[0, 0]
    shrink = t.shape[-1] > size
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrink)[0, 0]


def click_discs(points: Sequence[tuple[float, float]], size: int, radius: float) -> np.ndarray:
    """A ``size`` x ``size`` float32 map with a disc of ``radius`` at every point."""
    out = np.zeros((size, size), np.float32)
    if not points:
        return out
    yy, xx = np.ogrid[:size, :size]
    r2 = radius * radius
    for y, x in points:
        out[(yy - y) ** 2 + (xx - x) ** 2 <= r2] = 1.0
    return out


def encode(image_crop: torch.Tensor, positives, negatives, previous: torch.Tensor,
           config: ClickModelConfig) -> torch.Tensor:
    """Stack the network input ``(4, crop, crop)``: image, positive and negative discs, mask.

    ``positives`` / ``negatives`` are points in crop coordinates.
    """
    crop = config.crop_size
    pos = torch.from_numpy(click_discs(positives, crop, config.click_radius))
    neg = torch.from_numpy(click_discs(negatives, crop, config.click_radius))
    return torch.stack([image_crop, pos, neg, previous.float()])


def normalize_image(image: np.ndarray, config: ClickModelConfig) -> np.ndarray:
    """Percentile-normalise an image (subsampled for big ones) to float32 ~[0, 1]."""
    check_intensities(image)
    image = np.asarray(image)
    sample = image
    if image.size > 4_000_000:
        step = int(np.ceil(np.sqrt(image.size / 4_000_000)))
        sample = image[(slice(None),) * (image.ndim - 2) + (slice(None, None, step),) * 2]
    lo, hi = np.percentile(sample, [config.low_percentile, config.high_percentile])
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("The image contains NaN or infinite values; cannot segment it.")
    return ((image.astype(np.float32) - lo) / max(hi - lo, 1e-8)).astype(np.float32)


@dataclass
class ClickModel:
    """A loaded click network and its input encoding."""

    net: UNet
    config: ClickModelConfig
    device: torch.device
    meta: dict = field(default_factory=dict)

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """``(N, 4, crop, crop)`` inputs -> ``(N, crop, crop)`` object probabilities."""
        with torch.inference_mode():
            logits = self.net(batch.to(self.device))
        return torch.sigmoid(logits[:, 0].float()).cpu()


def new_click_network(config: ClickModelConfig) -> UNet:
    """An untrained click network for ``config``."""
    if config.unet.in_channels != 4 or config.unet.out_channels != 1 or config.unet.ndim != 2:
        raise ValueError("A click network is a 2D U-Net with 4 input channels and 1 output.")
    if config.crop_size % (2 ** config.unet.depth):
        raise ValueError(f"crop_size {config.crop_size} must be a multiple of "
                         f"2**depth = {2 ** config.unet.depth}.")
    return UNet(config.unet)


def save_click_model(folder, net: UNet, config: ClickModelConfig, meta: dict | None = None):
    """Write a click model folder (``config.yaml``, ``weights.pt``, ``meta.json``)."""
    return save_model_folder(folder, config.model_dump(mode="json"), net.state_dict(), meta)


@lru_cache(maxsize=4)
def _load(path: str, device_name: str) -> ClickModel:
    folder = load_model_folder(path, task="clicks")
    config = ClickModelConfig.model_validate(folder.config)
    net = new_click_network(config)
    try:
        net.load_state_dict(folder.state_dict)
    except RuntimeError as exc:
        raise ModelFolderError(f"{path}: the weights do not fit its config.yaml.") from exc
    device = select_device(device_name)
    net.to(device).eval()
    return ClickModel(net, config, device, folder.meta)


def load_click_model(name_or_path: str = "clicks", device: str = "auto") -> ClickModel:
    """Load (once per process) the built-in ``clicks`` model or a click-model folder."""
    return _load(str(Path(resolve_model(name_or_path)).resolve()), device)


def keep_clicked(mask: np.ndarray, positives: Sequence[tuple[float, float]]) -> np.ndarray:
    """Keep the connected parts of ``mask`` under a positive click (else the largest part)."""
    labels, n = ndi.label(mask)
    if n <= 1:
        return mask
    h, w = mask.shape
    keep = {labels[int(round(y)), int(round(x))] for y, x in positives
            if 0 <= round(y) < h and 0 <= round(x) < w}
    keep.discard(0)
    if not keep:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        keep = {int(sizes.argmax())}
    return np.isin(labels, list(keep))


class ClickSession:
    """Clicks on ONE object of a 2D image; every click updates :attr:`mask`.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` intensities, or ``(Y, X, C)`` RGB(A) (averaged to grey).
    config : ClickConfig, optional
    model : ClickModel, optional
        Default: ``load_click_model(config.model)``.
    normalized : bool
        ``image`` is already normalised (the caller did it once for a whole stack).
    previous : numpy.ndarray of bool, optional
        A mask to start from (an existing label to correct, or the neighbouring slice).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = ((yy - 32) ** 2 + (xx - 30) ** 2 < 100).astype(np.float32)
    >>> session = ClickSession(image)
    >>> mask = session.add(Click(32, 30))
    >>> bool(mask[32, 30]), bool(mask[5, 5])
    (True, False)
    """

    def __init__(self, image: np.ndarray, config: ClickConfig | None = None,
                 model: ClickModel | None = None, *, normalized: bool = False,
                 previous: np.ndarray | None = None):
        self.config = config or ClickConfig()
        image = np.asarray(image)
        check_intensities(image)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = image[..., :3].mean(axis=-1)
        if image.ndim != 2:
            raise ValueError(f"Click to segment works on one 2D image (Y, X); got shape "
                             f"{image.shape}: pick a slice or frame first.")
        if min(image.shape) < 2:
            raise ValueError(f"The image is too small to segment ({image.shape}).")
        self.model = model or load_click_model(self.config.model, self.config.device)
        self.image = image if normalized else normalize_image(image, self.model.config)
        self.clicks: list[Click] = []
        if previous is not None and previous.shape != self.image.shape:
            raise ValueError(f"The previous mask has shape {previous.shape}; the image "
                             f"{self.image.shape}.")
        self.mask = (np.zeros(self.image.shape, bool) if previous is None
                     else np.asarray(previous, bool).copy())
        self.last_window: Window | None = None

    # --- one network pass -------------------------------------------------------
    def _pass(self, window: Window, previous: np.ndarray) -> np.ndarray:
        cfg = self.model.config
        crop = cfg.crop_size
        image_crop = resize2d(cut(self.image, window), crop)
        prev_crop = resize2d(cut(previous, window), crop) > 0.5
        pos = [window.to_crop(c.y, c.x, crop) for c in self.clicks if c.positive]
        neg = [window.to_crop(c.y, c.x, crop) for c in self.clicks if not c.positive]
        x = encode(image_crop, pos, neg, prev_crop, cfg)[None]
        prob = self.model.probabilities(x)[0]
        prob = resize2d(prob, window.side).numpy()
        return self._paste(prob > self.config.threshold, window)

    def _paste(self, crop_mask: np.ndarray, window: Window) -> np.ndarray:
        """The window's mask in image coordinates, only the parts under positive clicks."""
        h, w = self.image.shape
        out = np.zeros((h, w), bool)
        ya, xa = max(window.y0, 0), max(window.x0, 0)
        yb, xb = min(window.y0 + window.side, h), min(window.x0 + window.side, w)
        if ya < yb and xa < xb:
            part = crop_mask[ya - window.y0:yb - window.y0, xa - window.x0:xb - window.x0]
            positives = [(c.y - ya, c.x - xa) for c in self.clicks if c.positive]
            out[ya:yb, xa:xb] = keep_clicked(part, positives)
        return out

    def _touches(self, mask: np.ndarray, window: Window) -> bool:
        """Does the mask reach an edge of the window that is inside the image?"""
        h, w = mask.shape
        y0, x0, s = window.y0, window.x0, window.side
        edges = []
        if y0 > 0:
            edges.append(mask[y0, max(x0, 0):min(x0 + s, w)])
        if y0 + s < h:
            edges.append(mask[y0 + s - 1, max(x0, 0):min(x0 + s, w)])
        if x0 > 0:
            edges.append(mask[max(y0, 0):min(y0 + s, h), x0])
        if x0 + s < w:
            edges.append(mask[max(y0, 0):min(y0 + s, h), x0 + s - 1])
        return any(e.sum() > 1 for e in edges if e.size)

    # --- public -----------------------------------------------------------------
    def add(self, click: Click) -> np.ndarray:
        """Add a click (positive or negative) and return the updated mask (bool, image shape)."""
        h, w = self.image.shape
        if not (0 <= click.y < h and 0 <= click.x < w):
            raise ValueError(f"The click at ({click.y:.0f}, {click.x:.0f}) is outside the "
                             f"image ({h} x {w}).")
        self.clicks.append(click)
        if not any(c.positive for c in self.clicks):
            # only negative clicks so far: nothing to segment, remove what is under them
            self.mask = self.mask & ~_discs_image(self.clicks, self.mask.shape, 3)
            return self.mask
        cfg = self.config
        points = [(c.y, c.x) for c in self.clicks]
        if self.mask.any():
            window = box_window(self.mask, points, cfg.context)
        else:
            first = next(c for c in self.clicks if c.positive)
            window = window_around(first.y, first.x, cfg.first_window)
        previous = self.mask
        mask = previous
        for _ in range(cfg.max_passes):
            mask = self._pass(window, previous)
            self.last_window = window
            if not mask.any():
                break
            touching = self._touches(mask, window)
            better = box_window(mask, points, cfg.context)
            ratio = better.side / window.side
            if not touching and 0.75 <= ratio <= 1.34:
                break
            if touching:
                better = box_window(mask, points, cfg.context * 1.5)
                better = window_around(better.y0 + better.side / 2, better.x0 + better.side / 2,
                                       max(better.side, window.side * 1.5))
            window = better
            previous = mask
        self.mask = mask
        return mask

    def add_box(self, y0: float, x0: float, y1: float, x1: float) -> np.ndarray:
        """Use a dragged box as the prompt: the object inside it (a new object)."""
        h, w = self.image.shape
        y0, y1 = sorted((min(max(y0, 0), h - 1), min(max(y1, 0), h - 1)))
        x0, x1 = sorted((min(max(x0, 0), w - 1), min(max(x1, 0), w - 1)))
        if y1 - y0 < 2 or x1 - x0 < 2:
            raise ValueError("The box is too small: drag over the whole object.")
        self.reset()
        click = Click((y0 + y1) / 2, (x0 + x1) / 2)
        self.clicks.append(click)
        box = np.zeros(self.image.shape, bool)
        box[int(y0):int(np.ceil(y1)) + 1, int(x0):int(np.ceil(x1)) + 1] = True
        window = box_window(box, [], self.config.context)
        mask = self._pass(window, np.zeros_like(box))
        if mask.any():  # a second pass at the object's own scale, inside the box
            mask = self._pass(box_window(mask, [], self.config.context), mask)
        grown = ndi.binary_dilation(box, iterations=max(2, int(0.05 * max(y1 - y0, x1 - x0))))
        self.mask = keep_clicked(mask & grown, [(click.y, click.x)])
        self.last_window = window
        return self.mask

    def reset(self) -> None:
        """Forget the clicks and the mask (the next click starts a new object)."""
        self.clicks.clear()
        self.mask = np.zeros(self.image.shape, bool)


def _discs_image(clicks: Sequence[Click], shape, radius: int) -> np.ndarray:
    out = np.zeros(shape, bool)
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    for c in clicks:
        out |= (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radius * radius
    return out


def interior_point(mask: np.ndarray) -> tuple[int, int] | None:
    """The pixel of ``mask`` farthest from its outline (``None`` for an empty mask)."""
    if not mask.any():
        return None
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return int(y), int(x)


def contrast(image: np.ndarray, mask: np.ndarray, ring: int = 4) -> float:
    """Mean intensity inside ``mask`` minus the mean of a ``ring``-pixel band around it."""
    if not mask.any():
        return 0.0
    band = ndi.binary_dilation(mask, iterations=ring) & ~mask
    if not band.any():
        return 0.0
    return float(np.mean(image[mask]) - np.mean(image[band]))


def follow(image: np.ndarray, mask: np.ndarray, config: ClickConfig | None = None,
           model: ClickModel | None = None, *, normalized: bool = False,
           reference: float | None = None) -> np.ndarray:
    """The same object in ``image`` (the next slice or frame), seeded by ``mask``.

    One positive click at the interior point of ``mask`` plus ``mask`` as the previous
    mask. Returns an empty mask when the object has ended: the new mask overlaps
    ``mask`` by less than ``config.follow_min_overlap`` (IoU), or its contrast with its
    surroundings is below ``config.follow_min_contrast`` times ``reference`` (the
    contrast where the object was clicked; by default that of ``mask`` on ``image``'s
    neighbour is unknown, so only the overlap rule applies).
    """
    config = config or ClickConfig()
    point = interior_point(mask)
    if point is None:
        return np.zeros(np.shape(image)[-2:], bool)
    session = ClickSession(image, config, model, normalized=normalized, previous=mask)
    new = session.add(Click(*point))
    union = np.logical_or(new, mask).sum()
    overlap = np.logical_and(new, mask).sum() / union if union else 0.0
    if overlap < config.follow_min_overlap:
        return np.zeros_like(new)
    if reference is not None and reference != 0:
        ratio = contrast(session.image, new) / reference
        if ratio < config.follow_min_contrast:
            return np.zeros_like(new)
    return new


def follow_stack(stack: np.ndarray, index: int, mask: np.ndarray,
                 config: ClickConfig | None = None, model: ClickModel | None = None,
                 *, directions: Sequence[int] = (-1, 1), normalized: bool = False,
                 should_stop: StopCallback = never_stop) -> np.ndarray:
    """Follow an object found on slice / frame ``index`` of ``stack`` through the stack.

    Returns a bool array of ``stack.shape[:3]``: ``mask`` on ``index`` and the
    followed masks on the neighbouring slices in ``directions`` until the object ends.
    """
    config = config or ClickConfig()
    model = model or load_click_model(config.model, config.device)
    stack = np.asarray(stack)
    if not normalized:
        stack = normalize_image(stack, model.config)
    out = np.zeros(stack.shape[:3], bool)
    out[index] = mask
    reference = contrast(stack[index], mask)
    for step in directions:
        current, z = mask, index + step
        for _ in range(config.follow_max_steps):
            if not 0 <= z < stack.shape[0] or should_stop():
                break
            current = follow(stack[z], current, config, model, normalized=True,
                             reference=reference)
            if not current.any():
                break
            out[z] = current
            z += step
    return out


def segment_from_clicks(image: np.ndarray, clicks: Sequence[Click | tuple],
                        config: ClickConfig | None = None, *,
                        previous: np.ndarray | None = None,
                        progress: ProgressCallback = no_progress,
                        should_stop: StopCallback = never_stop) -> np.ndarray:
    """The mask of one object from its clicks, as the click tool makes it, headless.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)``; ``(Z, Y, X)`` with ``config.mode == "3d"`` (the object is followed
        from the slice of the first click to the slices around it); ``(T, Y, X)`` with
        mode ``t`` (the clicked frame only; see :func:`follow` for the next one).
    clicks : sequence of Click or (y, x[, positive]) tuples
        In the order they were made; for stacks every click needs ``z`` (slice or frame),
        all on the same one.
    config : ClickConfig, optional
    previous : numpy.ndarray of bool, optional
        A mask to start from (2D, the clicked slice's shape).

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``image`` (minus a trailing RGB axis).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> disc = ((yy - 20) ** 2 + (xx - 40) ** 2 < 64).astype(np.float32)
    >>> mask = segment_from_clicks(disc, [(20, 40)])
    >>> mask.shape, bool(mask[20, 40])
    ((64, 64), True)
    """
    config = config or ClickConfig()
    clicks = [c if isinstance(c, Click) else Click(*c) for c in clicks]
    if not clicks:
        raise ValueError("No clicks given: click inside the object at least once.")
    image = np.asarray(image)
    check_intensities(image)
    if config.mode != "2d" and image.ndim != 3:
        raise ValueError(f"Mode {config.mode!r} needs a (Z|T, Y, X) array; got shape "
                         f"{image.shape}.")
    model = load_click_model(config.model, config.device)
    if config.mode == "2d":
        session = ClickSession(image, config, model, previous=previous)
        for i, click in enumerate(clicks):
            if should_stop():
                break
            session.add(click)
            progress_event(progress, i + 1, len(clicks))
        return session.mask
    planes = {c.z for c in clicks}
    if None in planes or len(planes) != 1:
        raise ValueError("In a stack every click needs the same slice / frame index (z).")
    index = planes.pop()
    if not 0 <= index < image.shape[0]:
        raise ValueError(f"Slice {index} is outside the stack of {image.shape[0]}.")
    norm = normalize_image(image, model.config)
    session = ClickSession(norm[index], config, model, normalized=True, previous=previous)
    for click in clicks:
        session.add(click)
    out = np.zeros(image.shape, bool)
    if config.mode == "t":
        out[index] = session.mask
        return out
    return follow_stack(norm, index, session.mask, config, model, normalized=True,
                        should_stop=should_stop)


def progress_event(progress: ProgressCallback, step: int, total: int) -> None:
    """Report ``step`` of ``total`` clicks."""
    from cellsight.core.progress import ProgressEvent

    progress(ProgressEvent(step, total, f"click {step} of {total}"))


def next_click(mask: np.ndarray, truth: np.ndarray) -> Click | None:
    """Where a careful annotator clicks next: the centre of the largest error region.

    The standard protocol of interactive-segmentation benchmarks: the point of the
    false-negative or false-positive area farthest from its outline; positive when it
    is a missed part of the object. ``None`` when the mask is exact.
    """
    fn = truth & ~mask
    fp = mask & ~truth
    if not fn.any() and not fp.any():
        return None
    best = None
    for region, positive in ((fn, True), (fp, False)):
        if not region.any():
            continue
        dist = ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        i = int(dist.argmax())
        if best is None or dist.flat[i] > best[0]:
            best = (float(dist.flat[i]), i, positive)
    _, i, positive = best
    y, x = np.unravel_index(i, mask.shape)
    return Click(int(y), int(x), positive)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def simulate_annotator(image: np.ndarray, truth: np.ndarray, model: ClickModel | None = None,
                       config: ClickConfig | None = None, *, max_clicks: int = 20,
                       normalized: bool = False, stop_at: float = 1.01,
                       timings: list | None = None) -> list[float]:
    """IoU with ``truth`` after each of up to ``max_clicks`` simulated clicks.

    The first click is at the object's centre (its largest "error region"), every next
    one at the centre of the largest error region (:func:`next_click`). Stops early
    when the IoU reaches ``stop_at``; the list then ends there (later clicks would keep
    it). ``timings`` (a list) receives the seconds every click took.
    """
    import time

    session = ClickSession(image, config, model, normalized=normalized)
    # work on a box around the object: a click only changes its window anyway
    scores = []
    for _ in range(max_clicks):
        click = next_click(session.mask, truth)
        if click is None:
            scores.append(1.0)
            break
        t0 = time.perf_counter()
        session.add(click)
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        scores.append(iou(session.mask, truth))
        if scores[-1] >= stop_at:
            break
    return scores


def paint_object(labels: np.ndarray, mask: np.ndarray, label: int,
                 previous: np.ndarray | None = None) -> np.ndarray:
    """Labels with object ``label`` set to ``mask`` (a new array; other objects are kept).

    Pixels of ``label`` outside ``mask`` become background; ``mask`` is written over
    background and over ``label`` only, never over another object. ``previous`` (the
    object's last mask) limits the clearing to the pixels the click tool drew.
    """
    labels = np.asarray(labels)
    if mask.shape != labels.shape:
        raise ValueError(f"Mask shape {mask.shape} differs from the labels' {labels.shape}.")
    out = labels.copy()
    own = labels == label
    clear = own & ~mask if previous is None else own & previous & ~mask
    out[clear] = 0
    out[mask & ((labels == 0) | own)] = label
    return out
