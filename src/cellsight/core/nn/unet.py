"""A configurable 2D / 3D U-Net (used by semantic segmentation and Noise2Void).

The network maps ``(N, C_in, *spatial)`` to ``(N, C_out, *spatial)`` with the same
spatial size. Every spatial size must be a multiple of :func:`size_divisor`
(``2**depth``); :func:`cellsight.core.nn.tiling.predict_tiled` pads images (reflect) to
such sizes and crops the result, so callers never need to care.
"""

import torch
from torch import nn
from torch.nn import functional as F

from cellsight.config.unet import UNetConfig


def size_divisor(config: UNetConfig) -> int:
    """Return the number every spatial input size must be a multiple of (``2**depth``)."""
    return 2**config.depth


def _conv(ndim: int):
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(kind: str, ndim: int, channels: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """Two 3x3(x3) convolutions, each followed by normalisation and ReLU."""

    def __init__(self, ndim: int, c_in: int, c_out: int, norm: str):
        conv = _conv(ndim)
        bias = norm == "none"
        super().__init__(
            conv(c_in, c_out, 3, padding=1, bias=bias),
            _norm(norm, ndim, c_out),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, 3, padding=1, bias=bias),
            _norm(norm, ndim, c_out),
            nn.ReLU(inplace=True),
        )


class BlurPool(nn.Module):
    """Anti-aliased down-sampling: max pool with stride 1, then a [1, 2, 1] blur, stride 2."""

    def __init__(self, ndim: int, channels: int):
        super().__init__()
        self.ndim = ndim
        self.channels = channels
        k1 = torch.tensor([1.0, 2.0, 1.0])
        kernel = k1[:, None] * k1[None, :]
        if ndim == 3:
            kernel = kernel[:, :, None] * k1[None, None, :]
        kernel = kernel / kernel.sum()
        weight = kernel[None, None].repeat(channels, *([1] * (ndim + 1)))
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Down-sample ``x`` by 2 along every spatial axis."""
        x = F.pad(x, (0, 1) * self.ndim, mode="replicate")
        x = (F.max_pool2d if self.ndim == 2 else F.max_pool3d)(x, 2, stride=1)
        x = F.pad(x, (1, 1) * self.ndim, mode="replicate")
        conv = F.conv2d if self.ndim == 2 else F.conv3d
        return conv(x, self.weight.to(x.dtype), stride=2, groups=self.channels)


class Up(nn.Module):
    """Double the spatial size and halve the channels (transposed or resize-convolution)."""

    def __init__(self, ndim: int, c_in: int, c_out: int, mode: str):
        super().__init__()
        if mode == "transposed":
            tconv = nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d
            self.op = tconv(c_in, c_out, 2, stride=2)
        else:
            self.op = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), _conv(ndim)(c_in, c_out, 3, padding=1)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Up-sample ``x``."""
        return self.op(x)


class UNet(nn.Module):
    """U-Net built from a :class:`~cellsight.config.unet.UNetConfig`.

    Parameters
    ----------
    config : UNetConfig
        Architecture. ``config.out_channels`` raw maps (logits) come out.

    Notes
    -----
    Input spatial sizes must be multiples of ``size_divisor(config)``; use
    :func:`cellsight.core.nn.tiling.predict_tiled` for arbitrary sizes (it pads).

    Examples
    --------
    >>> net = UNet(UNetConfig(depth=2, base_channels=8))
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 2, 32, 32])
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        nd, norm = config.ndim, config.norm
        chans = [config.base_channels * 2**i for i in range(config.depth + 1)]
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        c_prev = config.in_channels
        for level in range(config.depth):
            self.encoders.append(ConvBlock(nd, c_prev, chans[level], norm))
            if config.blurpool:
                self.pools.append(BlurPool(nd, chans[level]))
            else:
                self.pools.append((nn.MaxPool2d if nd == 2 else nn.MaxPool3d)(2))
            c_prev = chans[level]
        self.bottleneck = ConvBlock(nd, chans[-2], chans[-1], norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self._skip = []  # per decoder, top level last
        for level in reversed(range(config.depth)):
            self.ups.append(Up(nd, chans[level + 1], chans[level], config.upsampling))
            skip = level > 0 or config.top_skip
            self._skip.append(skip)
            c_in = chans[level] * (2 if skip else 1)
            self.decoders.append(ConvBlock(nd, c_in, chans[level], norm))
        self.head = _conv(nd)(chans[0], config.out_channels, 1)

    @property
    def divisor(self) -> int:
        """Every spatial input size must be a multiple of this number."""
        return size_divisor(self.config)

    def _check(self, x: torch.Tensor) -> None:
        want = self.config.ndim + 2
        if x.ndim != want:
            raise ValueError(
                f"This {self.config.ndim}D U-Net needs input of shape (N, C, "
                f"{'Z, ' if self.config.ndim == 3 else ''}Y, X); got {tuple(x.shape)}."
            )
        if x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"This U-Net expects {self.config.in_channels} input channel(s); got {x.shape[1]}."
            )
        bad = [s for s in x.shape[2:] if s % self.divisor]
        if bad:
            raise ValueError(
                f"Spatial sizes {tuple(x.shape[2:])} must be multiples of {self.divisor} "
                "(2**depth); pad the input or use predict_tiled, which pads."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(N, out_channels, *spatial)`` raw outputs for ``x`` of ``(N, C, *spatial)``."""
        self._check(x)
        skips = []
        for enc, pool in zip(self.encoders, self.pools, strict=True):
            x = enc(x)
            skips.append(x)
            x = pool(x)
        x = self.bottleneck(x)
        parts = zip(self.ups, self.decoders, reversed(skips), self._skip, strict=True)
        for up, dec, skip, use_skip in parts:
            x = up(x)
            if use_skip:
                x = torch.cat([skip, x], dim=1)
            x = dec(x)
        return self.head(x)
