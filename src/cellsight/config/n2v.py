"""Parameters of Noise2Void (N2V / N2V2) self-supervised denoising."""

from typing import Literal

from pydantic import Field, field_validator

from cellsight.config.base import StrictConfig
from cellsight.config.checks import check_axes, check_tile_size
from cellsight.config.device import DeviceName

Variant = Literal["n2v", "n2v2"]


class N2VConfig(StrictConfig):
    """How a Noise2Void denoiser is built and trained on the noisy image itself.

    Saved with every N2V model (``config.yaml``, key ``n2v``).
    """

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    variant: Variant = Field(
        "n2v",
        title="Variant",
        description="n2v = original blind-spot training (random neighbour replacement); "
        "n2v2 = median replacement, blur-pool down-sampling and no top-level skip "
        "connection, which avoids checkerboard artefacts.",
    )
    steps: int = Field(
        400,
        ge=1,
        le=1_000_000,
        title="Steps",
        description="Number of optimiser steps (batches of patches).",
    )
    patch_size: int = Field(
        64,
        ge=8,
        le=1024,
        title="Patch size (Y, X)",
        description="Side of the square training patches in pixels (rounded down to the "
        "network's size divisor, and to the image size for small images).",
    )
    patch_size_z: int = Field(
        16,
        ge=4,
        le=256,
        title="Patch size (Z)",
        description="3D volumes only: patch depth in slices.",
    )
    batch_size: int = Field(
        16, ge=1, le=512, title="Batch size", description="Patches per optimiser step."
    )
    masked_fraction: float = Field(
        0.015,
        gt=0.0,
        le=0.1,
        title="Masked fraction",
        description="Share of the pixels of every patch that are hidden (blind spots); the "
        "loss is computed on these pixels only.",
    )
    neighbourhood_radius: int = Field(
        5,
        ge=1,
        le=10,
        title="Neighbourhood radius",
        description="A hidden pixel is replaced from the (2r+1)^n neighbourhood around it, "
        "the pixel itself excluded.",
    )
    learning_rate: float = Field(
        2e-3,
        gt=0.0,
        le=1.0,
        title="Learning rate",
        description="Adam learning rate at start; cosine decay to 5% of it over the steps.",
    )
    depth: int = Field(
        2, ge=1, le=5, title="U-Net depth", description="Number of down-sampling steps."
    )
    base_channels: int = Field(
        16,
        ge=4,
        le=128,
        title="Base channels",
        description="Feature channels at the top level of the U-Net (doubled per level).",
    )
    augment: bool = Field(
        True,
        title="Augment",
        description="Random flips and 90° rotations of the training patches.",
    )
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        title="Validation fraction",
        description="Share of the data held out for validation patches (a stripe of the "
        "image, or whole frames of a time series); 0 disables validation.",
    )
    checkpoint_every: int = Field(
        200,
        ge=1,
        le=1_000_000,
        title="Checkpoint every",
        description="Steps between periodic checkpoints (the last one is always kept; the "
        "loss of a self-supervised model does not measure quality, so none is 'best').",
    )
    mixed_precision: bool = Field(
        True,
        title="Mixed precision",
        description="Train in bfloat16 where the device does so natively (CUDA GPUs with "
        "bf16, CPUs with AVX-512 BF16 or AMX); weights stay float32. Elsewhere float32.",
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, title="Random seed", description="Seed of patches and masks."
    )
    device: DeviceName = Field(
        "auto",
        title="Device",
        description="Where training runs: auto = CUDA if present, else Apple MPS, else CPU.",
    )


#: axis letters an N2V image may have: samples (T, Q, I), channels (C, S), Z, Y, X
N2V_AXIS_LETTERS = "TQICSZYX"


class DenoisePredictConfig(StrictConfig):
    """How a trained Noise2Void model is run over an image (tiling, device)."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    axes: str = Field(
        "",
        title="Axes",
        description="One letter per image dimension: T (or Q, I) frames denoised one by one, "
        "C (or S) channels, Z, Y, X; e.g. TYX, ZYX, CYX. '' = YX (2D images only).",
    )
    tile_size: int = Field(
        0,
        ge=0,
        le=4096,
        title="Tile size",
        description="Largest tile edge in pixels along every spatial axis fed to the network "
        "at once (Y and X; Z too for 3D models). 0 = the default: 512 x 512 in 2D, "
        "64 x 128 x 128 (Z, Y, X) in 3D.",
    )
    batch_size: int = Field(
        4, ge=1, le=512, title="Batch size", description="Tiles per forward pass."
    )
    device: DeviceName = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )

    @field_validator("axes")
    @classmethod
    def _known_letters(cls, value: str) -> str:
        return check_axes(value, N2V_AXIS_LETTERS)

    @field_validator("tile_size")
    @classmethod
    def _tile_size(cls, value: int) -> int:
        return check_tile_size(value)
