"""Architecture of the U-Net shared by semantic segmentation and Noise2Void."""

from typing import Literal

from pydantic import Field

from cellsight.config.base import StrictConfig


class UNetConfig(StrictConfig):
    """U-Net architecture (2D or 3D); saved with every model as ``config.yaml``.

    The network maps ``(N, in_channels, *spatial)`` to ``(N, out_channels, *spatial)``.
    Spatial sizes must be multiples of ``2**depth``; tiled prediction pads for that.
    """

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    ndim: Literal[2, 3] = Field(
        2,
        title="Spatial dimensions",
        description="2 for images (Y, X), 3 for volumes (Z, Y, X) with 3D convolutions.",
    )
    in_channels: int = Field(
        1, ge=1, le=64, title="Input channels", description="Number of image channels fed in."
    )
    out_channels: int = Field(
        2,
        ge=1,
        le=256,
        title="Output channels",
        description="Number of output maps (classes for segmentation, channels for denoising).",
    )
    depth: int = Field(
        3,
        ge=1,
        le=6,
        title="Depth",
        description="Number of down-sampling steps; the receptive field grows with it and "
        "image sizes must be multiples of 2**depth (tiling pads automatically).",
    )
    base_channels: int = Field(
        32,
        ge=4,
        le=256,
        title="Base channels",
        description="Feature channels at the top level; doubled at every level below.",
    )
    norm: Literal["batch", "instance", "group", "none"] = Field(
        "batch",
        title="Normalisation",
        description="Normalisation layer after each convolution (batch, instance, group or none).",
    )
    upsampling: Literal["transposed", "resize"] = Field(
        "transposed",
        title="Upsampling",
        description="transposed = learned transposed convolution; resize = nearest-neighbour "
        "resize followed by a convolution (no checkerboard artefacts).",
    )
    blurpool: bool = Field(
        False,
        title="Blur pooling",
        description="Anti-aliased down-sampling: max pooling with stride 1, then a blur with "
        "stride 2 (as in N2V2).",
    )
    top_skip: bool = Field(
        True,
        title="Top skip connection",
        description="Keep the skip connection at the top level; N2V2 drops it to avoid "
        "checkerboard artefacts.",
    )
    final_activation: Literal["none"] = Field(
        "none",
        title="Final activation",
        description="The network returns raw values (logits); callers apply softmax or sigmoid.",
    )
