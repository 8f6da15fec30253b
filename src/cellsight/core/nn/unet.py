"""A configurable 2D / 3D U-Net (used by semantic segmentation and Noise2Void).

The network maps ``(N, C_in, *spatial)`` to ``(N, C_out, *spatial)`` with the same
spatial size. Every spatial size must be a multiple of :func:`size_divisor`
(``2**depth``); :func:`cellsight.core.nn.tiling.predict_tiled` pads images (reflect) to
such sizes and crops the result, so callers never need to care.
"""

import torch

from cellsight.config.unet import UNetConfig
from cellsight.core.nn.unet_arch import BlurPool, ConvBlock, UNetArch, Up

__all__ = ["BlurPool", "ConvBlock", "UNet", "Up", "size_divisor"]


def size_divisor(config: UNetConfig) -> int:
    """Return the number every spatial input size must be a multiple of (``2**depth``)."""
    return 2**config.depth


class UNet(UNetArch):
    """U-Net built from a :class:`~cellsight.config.unet.UNetConfig`.

    The layers are :class:`cellsight.core.nn.unet_arch.UNetArch` (torch only, the
    architecture file of exported bioimage.io packages); this class adds the config,
    the size divisor and input checks.

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
        super().__init__(**config.model_dump())
        self.config = config

    @property
    def divisor(self) -> int:
        """Every spatial input size must be a multiple of this number."""
        return size_divisor(self.config)

    def load_weights(self, state_dict: dict, source) -> None:
        """Load ``state_dict``; weights of another network raise ONE short ValueError.

        torch's own message lists every tensor (kilobytes for a deep U-Net); this one
        counts them and names the first.
        """
        own = self.state_dict()
        unexpected = [k for k in state_dict if k not in own]
        missing = [k for k in own if k not in state_dict]
        shaped = [k for k in own if k in state_dict and hasattr(state_dict[k], "shape")
                  and tuple(state_dict[k].shape) != tuple(own[k].shape)]
        if unexpected or missing or shaped:
            first = (f"e.g. {shaped[0]} is {tuple(state_dict[shaped[0]].shape)}, the config "
                     f"wants {tuple(own[shaped[0]].shape)}" if shaped
                     else f"e.g. {(unexpected or missing)[0]}")
            raise ValueError(
                f"The weights in {source} do not fit its config.yaml: they belong to another "
                f"network ({len(unexpected)} extra, {len(missing)} missing and {len(shaped)} "
                f"differently shaped tensors; {first})."
            )
        try:
            self.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise ValueError(f"The weights in {source} do not fit its config.yaml: "
                             f"{' '.join(str(exc).split())[:200]}") from exc

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
        return super().forward(x)
