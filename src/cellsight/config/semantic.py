"""Semantic segmentation: one class per pixel from a U-Net trained on scribbles or masks."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from cellsight.config.base import StrictConfig
from cellsight.config.checks import check_axes, check_tile_size
from cellsight.config.device import DeviceName
from cellsight.config.training import NormalizationConfig, TrainConfig
from cellsight.config.unet import UNetConfig


class SemanticConfig(StrictConfig):
    """Everything a semantic-segmentation model needs; saved as its ``config.yaml``.

    Label images hold classes ``1..K``; ``0`` means "not annotated" and is ignored by
    the loss (so scribbles work), unless ``zero_is_background`` is set, in which case
    ``0`` is a class of its own (dense masks).
    """

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    task: Literal["semantic"] = Field(
        "semantic", title="Task", description="Which kind of model this is."
    )
    zero_is_background: bool = Field(
        False,
        title="0 is background",
        description="Treat label 0 as the background class (dense masks) instead of "
        "'not annotated' (scribbles).",
    )
    scale: float = Field(
        1.0,
        ge=0.1,
        le=4.0,
        title="Image scale",
        description="Resize images in Y/X by this factor before the network (0.5 halves "
        "them: for large objects it gives the network more context and runs about 4x "
        "faster). Results come back at the original size.",
    )
    soft_targets: bool = Field(
        True,
        title="Soft targets when shrunk",
        description="With a scale below 1, teach each class's share of every shrunk pixel "
        "instead of only its majority class, so outlines land between pixels once the "
        "result is enlarged back (no effect at scale 1).",
    )
    n_classes: int = Field(
        0,
        ge=0,
        le=255,
        title="Classes",
        description="Number of classes the model predicts, background included when 0 is "
        "background (0 = count them in the training labels).",
    )
    unet: UNetConfig = Field(
        default_factory=lambda: UNetConfig(depth=3, base_channels=32),
        title="Network",
        description="U-Net architecture (output channels are set from the classes).",
    )
    training: TrainConfig = Field(
        default_factory=TrainConfig, title="Training", description="Training parameters."
    )
    normalization: NormalizationConfig = Field(
        default_factory=NormalizationConfig,
        title="Normalisation",
        description="Input percentile normalisation.",
    )

    @model_validator(mode="after")
    def _classes_fit_outputs(self):
        if self.n_classes and self.unet.out_channels != self.n_classes:
            raise ValueError(
                f"unet.out_channels ({self.unet.out_channels}) must equal n_classes "
                f"({self.n_classes})"
            )
        return self

    @property
    def class_offset(self) -> int:
        """Label id of output channel 0: 1 for scribbles, 0 when 0 is background."""
        return 0 if self.zero_is_background else 1


class SemanticPredictConfig(StrictConfig):
    """How a semantic model is run over an image (tiling, device, augmentation)."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    axes: str = Field(
        "",
        title="Axes",
        description="One letter per image dimension from TCZYX, e.g. TYX or ZCYX; "
        "'' = the model's layout ([T][C]{Z}YX, C only for multi-channel models).",
    )
    timeseries: bool = Field(
        False,
        title="Time series",
        description="Without axes: the first axis is time (or any stack), normalised and "
        "segmented frame by frame. Ignored when axes are given (a T there is time).",
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
    overlap: int = Field(
        0,
        ge=0,
        le=1024,
        title="Tile overlap",
        description="Smallest overlap between neighbouring tiles in pixels. 0 = automatic: "
        "1/16 of the tile edge, at least the network's size divisor.",
    )
    batch_size: int = Field(
        4, ge=1, le=512, title="Batch size", description="Tiles per forward pass."
    )
    device: DeviceName = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )
    test_time_augmentation: bool = Field(
        False,
        title="Test-time augmentation",
        description="Average the class probabilities over the 8 flips / 90° rotations of "
        "the Y/X plane: 8x the prediction time, smoother and usually slightly more "
        "accurate outlines.",
    )

    @field_validator("axes")
    @classmethod
    def _known_letters(cls, value: str) -> str:
        return check_axes(value)

    @field_validator("tile_size")
    @classmethod
    def _tile_size(cls, value: int) -> int:
        return check_tile_size(value)
