"""Parameters of fine-tuning an instance model on a biologist's corrections.

The defaults are short on purpose: a few hundred steps, a few minutes on two CPU
cores, half the learning rate the starting model was trained with. The dock widget and
``cellsight train --task instance --from ...`` both use them when nothing is set.
"""

from typing import Literal

from pydantic import Field

from cellsight.config.base import StrictConfig
from cellsight.config.training import TrainConfig


class FineTuneConfig(StrictConfig):
    """How a model is fine-tuned on corrected labels and how the result is checked."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    region: Literal["frames", "edited"] = Field(
        "frames",
        title="Train on",
        description="frames: the whole of every reviewed frame (all its objects are "
        "correct); edited: only around the objects you changed, the rest is ignored.",
    )
    margin: int = Field(
        16,
        ge=0,
        le=500,
        title="Margin around edits (pixels)",
        description="'edited' mode: this much of the surroundings of each edited region is "
        "learned too, so the model sees the object's border and background.",
    )
    holdout_fraction: float = Field(
        0.25,
        ge=0.05,
        le=0.5,
        title="Held-out share",
        description="Share of the corrections kept aside to measure AP@0.5 before and after: "
        "whole frames when two or more frames were corrected, else a stripe of the image.",
    )
    steps: int = Field(
        300, ge=1, le=100_000, title="Steps", description="Number of optimiser steps (batches)."
    )
    learning_rate: float = Field(
        0.0,
        ge=0.0,
        le=0.1,
        title="Learning rate",
        description="AdamW learning rate at start (cosine decay). 0 = half the rate the "
        "starting model was trained with (1e-3 for the built-in nuclei model), so it "
        "keeps what it knew.",
    )
    time_limit_minutes: float = Field(
        3.0,
        ge=0.0,
        le=10_000.0,
        title="Time limit (minutes)",
        description="Stop fine-tuning after this many minutes (0 = no limit).",
    )
    batch_size: int = Field(
        4, ge=1, le=256, title="Batch size", description="Patches per optimiser step."
    )
    patch_size: int = Field(
        128,
        ge=16,
        le=2048,
        title="Patch size (Y, X)",
        description="Side of the square training patches in pixels (at most the image size).",
    )
    anchor: float = Field(
        30.0,
        ge=0.0,
        le=1000.0,
        title="Pull to the starting model",
        description="Each step moves the weights back toward the starting model by "
        "learning rate x this x their difference (L2-SP), so a few corrected frames cannot "
        "pull the model far from what it knew (30: chosen on the BBBC050 tuning cases of "
        "benchmarks/finetune_few.py). 0 = off.",
    )
    check_frames: int = Field(
        16,
        ge=0,
        le=100,
        title="Un-corrected frames checked",
        description="After training, up to this many frames (about 2 megapixels in all) of "
        "the same images that hold no corrections are segmented by the old and the new "
        "model; the new model is used only if it keeps the old one's confident objects "
        "there and adds few on background (0 = held-out check only).",
    )
    check_keep: float = Field(
        0.97,
        ge=0.0,
        le=1.0,
        title="Keep at least (share)",
        description="On un-corrected frames the new model must find at least this share of "
        "the objects the old model was sure of (found again on the flipped frame). 0.97: "
        "set on BBBC050 and SIM+ (benchmarks/finetune_few.py), where losing 5 % of them "
        "already went with -0.08 AP@0.5.",
    )
    check_added: float = Field(
        0.5,
        ge=0.0,
        le=100.0,
        title="Add at most (per old object)",
        description="On un-corrected frames the new model may add at most this many objects "
        "on the old model's background per object of the old model.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed", description="Random seed.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """The base model's training parameters with these fine-tuning values.

        Augmentation and loss settings stay those of the base model. The held-out
        corrections measure the result, so no validation stripe is cut off: the
        weights after the last step are kept.
        """
        return TrainConfig.model_validate(
            base.model_dump()
            | {
                "steps": self.steps,
                "learning_rate": self.learning_rate or base.learning_rate / 2,
                "time_limit_minutes": self.time_limit_minutes,
                "batch_size": self.batch_size,
                "patch_size": self.patch_size,
                "seed": self.seed,
                "device": self.device,
                "anchor_weight": self.anchor,
                "val_fraction": 0.0,
                "val_every": self.steps,
                "patience": 0,
            }
        )
