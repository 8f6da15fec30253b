"""The U-Net layers, with no dependency but torch: the architecture file of exported packages.

:class:`cellsight.core.nn.unet.UNet` is this network built from a
:class:`~cellsight.config.unet.UNetConfig`. A bioimage.io package written by
``cellsight export`` ships this file as its ``pytorch_state_dict`` architecture
(callable :class:`UNetArch`, keyword arguments = the config's fields), so any
bioimage.io consumer can rebuild the network without cellsight installed. Keep it free
of cellsight imports.
"""

import torch
from torch import nn
from torch.nn import functional as F


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


class UNetArch(nn.Module):
    """U-Net mapping ``(N, in_channels, *spatial)`` to ``(N, out_channels, *spatial)`` logits.

    Spatial sizes must be multiples of ``2**depth``. The keyword arguments are the
    fields of cellsight's ``UNetConfig`` (``version`` and ``final_activation`` are
    accepted and ignored, so a config dump can be passed as it is).
    """

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 2,
        depth: int = 3,
        base_channels: int = 32,
        norm: str = "batch",
        upsampling: str = "transposed",
        blurpool: bool = False,
        top_skip: bool = True,
        **ignored,
    ):
        super().__init__()
        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        self.pools = nn.ModuleList()
        c_prev = in_channels
        for level in range(depth):
            self.encoders.append(ConvBlock(ndim, c_prev, chans[level], norm))
            if blurpool:
                self.pools.append(BlurPool(ndim, chans[level]))
            else:
                self.pools.append((nn.MaxPool2d if ndim == 2 else nn.MaxPool3d)(2))
            c_prev = chans[level]
        self.bottleneck = ConvBlock(ndim, chans[-2], chans[-1], norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self._skip = []  # per decoder, top level last
        for level in reversed(range(depth)):
            self.ups.append(Up(ndim, chans[level + 1], chans[level], upsampling))
            skip = level > 0 or top_skip
            self._skip.append(skip)
            c_in = chans[level] * (2 if skip else 1)
            self.decoders.append(ConvBlock(ndim, c_in, chans[level], norm))
        self.head = _conv(ndim)(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(N, out_channels, *spatial)`` raw outputs for ``x`` of ``(N, C, *spatial)``."""
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
