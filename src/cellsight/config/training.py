"""Training parameters of a U-Net that classifies pixels (semantic / instance targets)."""

from typing import Literal

from pydantic import Field, model_validator

from cellsight.config.base import StrictConfig


class NormalizationConfig(StrictConfig):
    """Percentile normalisation of the input, stored with a model."""

    low: float = Field(
        1.0, ge=0.0, le=50.0, title="Low percentile", description="Percentile mapped to 0."
    )
    high: float = Field(
        99.8, ge=50.0, le=100.0, title="High percentile", description="Percentile mapped to 1."
    )
    mode: Literal["per_image", "stored"] = Field(
        "per_image",
        title="Normalisation mode",
        description="per_image: measure the percentiles on every image (frame) predicted; "
        "stored: apply the values measured on the training images.",
    )
    low_values: list[float] = Field(
        default_factory=list,
        title="Low values",
        description="Training-set value of the low percentile, per channel (filled in by "
        "training).",
    )
    high_values: list[float] = Field(
        default_factory=list,
        title="High values",
        description="Training-set value of the high percentile, per channel (filled in by "
        "training).",
    )

    @model_validator(mode="after")
    def _ordered(self):
        if self.low >= self.high:
            raise ValueError(f"low percentile {self.low} must be below high {self.high}")
        if len(self.low_values) != len(self.high_values):
            raise ValueError("low_values and high_values need one value per channel each")
        return self


class TrainConfig(StrictConfig):
    """How a pixel classifier is trained: steps, patches, augmentation, validation."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    steps: int = Field(
        2000, ge=1, le=1_000_000, title="Steps", description="Number of optimiser steps (batches)."
    )
    batch_size: int = Field(
        8, ge=1, le=256, title="Batch size", description="Patches per optimiser step."
    )
    patch_size: int = Field(
        128,
        ge=8,
        le=2048,
        title="Patch size (Y, X)",
        description="Side of the square training patches in pixels; rounded up to the "
        "network's size divisor.",
    )
    patch_size_z: int = Field(
        32,
        ge=4,
        le=512,
        title="Patch size (Z)",
        description="3D models only: patch depth in slices.",
    )
    learning_rate: float = Field(
        1e-3,
        gt=0.0,
        le=1.0,
        title="Learning rate",
        description="AdamW learning rate at start (cosine decay to 5% of it over the steps).",
    )
    weight_decay: float = Field(
        1e-4, ge=0.0, le=1.0, title="Weight decay", description="AdamW weight decay."
    )
    anchor_weight: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        title="Pull to the starting weights",
        description="When training starts from a model: each step moves every weight back "
        "toward its starting value by learning rate x this x the difference (L2-SP, "
        "decoupled like AdamW's decay), so a short fine-tuning on few corrections cannot "
        "drift far from what the model knew. 0 = off.",
    )
    annotated_fraction: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        title="Annotated-patch fraction",
        description="Share of patches centred on an annotated pixel (class chosen uniformly, "
        "so rare classes and sparse scribbles are seen often); the rest are placed at random.",
    )
    dice_weight: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        title="Dice weight",
        description="Loss = cross-entropy + this x soft Dice, both over annotated pixels only.",
    )
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        title="Validation fraction",
        description="Share of each image (a stripe along X) whose annotations are held out "
        "for validation; 0 disables validation (then the training loss picks the best model).",
    )
    val_every: int = Field(
        100, ge=1, le=100_000, title="Validate every", description="Steps between validations."
    )
    patience: int = Field(
        10,
        ge=0,
        le=10_000,
        title="Early-stop patience",
        description="Stop after this many validations without improvement (0 = never).",
    )
    flips: bool = Field(True, title="Flips", description="Random flips along every axis.")
    rotate90: bool = Field(
        True, title="90° rotations", description="Random 90° rotations in the Y/X plane."
    )
    intensity: bool = Field(
        True,
        title="Intensity / gamma",
        description="Random contrast, brightness and gamma changes.",
    )
    zoom: bool = Field(
        False,
        title="Random zoom",
        description="Random zoom of Y/X by 0.8-1.25x (objects of varied size; helps with few "
        "training images).",
    )
    elastic: bool = Field(
        False,
        title="Elastic deformation",
        description="Random smooth deformations (slower; helps with few annotations).",
    )
    hard_mining: float = Field(
        0.0,
        ge=0.0,
        le=0.9,
        title="Hard-pixel patches",
        description="Share of patches centred on annotated pixels the model currently "
        "gets wrong (found by predicting the training images at every validation, within "
        "a tenth of the training time); 0 = off.",
    )
    time_limit_minutes: float = Field(
        0.0,
        ge=0.0,
        le=10_000.0,
        title="Time limit (minutes)",
        description="Stop training after this many minutes (0 = no limit); the learning-rate "
        "schedule follows whichever of steps and time runs out first.",
    )
    weight_averaging: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        title="Weight averaging",
        description="Share of the run, at its end, over which the weights are averaged "
        "(stochastic weight averaging); the averaged model is kept instead of the best "
        "checkpoint. 0 = off (keep the weights with the best validation loss).",
    )
    mixed_precision: bool = Field(
        True,
        title="Mixed precision",
        description="Compute in bfloat16 where the device does so natively (CUDA GPUs with "
        "bf16, CPUs with AVX-512 BF16 or AMX): about twice as fast; weights stay float32. "
        "Elsewhere training runs in float32 whatever this says.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed", description="Random seed.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )
