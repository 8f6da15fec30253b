"""Parameter sets of instance segmentation: training targets, prediction, post-processing.

An instance model is a U-Net trained on a class map derived from instance labels
(see :mod:`cellsight.core.segmentation.instance_targets`): 0 = not annotated (ignored by the loss),
1 = background, 2 = object interior, 3 = object boundary. Its outputs give a
foreground probability (interior + boundary) and a boundary probability, which a
seeded watershed turns into separated objects.
"""

from typing import Literal

from pydantic import Field, model_validator

from cellsight.config.base import StrictConfig
from cellsight.config.semantic import SemanticConfig
from cellsight.config.unet import UNetConfig

#: class ids of the instance target map
IGNORE, BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2, 3
N_INSTANCE_CLASSES = 3  # background, interior, boundary (the ignore label is not a class)


class InstanceTargetConfig(StrictConfig):
    """How instance labels become the class map an instance model is trained on."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    boundary_width: float = Field(
        2.0,
        ge=1.0,
        le=20.0,
        title="Boundary width",
        description="Width (pixels, in Y/X) of the boundary band inside each object that the "
        "model learns to mark; touching objects are separated along it.",
    )
    anisotropy: float = Field(
        1.0,
        ge=0.05,
        le=50.0,
        title="Anisotropy (Z / XY)",
        description="3D only: Z spacing divided by the Y/X spacing, so the boundary band has "
        "the same physical width along every axis.",
    )
    unannotated_margin: int = Field(
        8,
        ge=0,
        le=500,
        title="Margin around unannotated objects",
        description="Partially annotated images: pixels this close to an unannotated object "
        "marker are left out of training, so unlabelled nuclei are not taught as background.",
    )
    min_solidity: float = Field(
        0.95,
        ge=0.0,
        le=1.0,
        title="Solidity of a single object",
        description="Binary (foreground-only) masks: a connected blob at least this convex "
        "is trained as one object; less convex blobs (likely touching objects) keep only "
        "their outline and the background, their inside is not trained.",
    )


class InstancePostConfig(StrictConfig):
    """Seeded watershed turning foreground and boundary maps into separated objects.

    seeds = connected components of (foreground - boundary) > ``seed_threshold``
    (with ``split_by_shape``, further split at their necks); mask = foreground >
    ``mask_threshold``; seeds grow over the boundary map inside the mask; objects
    smaller than ``min_size`` are dropped; ids are consecutive.
    """

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    seed_threshold: float = Field(
        0.5,
        ge=0.01,
        le=0.99,
        title="Seed threshold",
        description="Seeds are the connected regions where foreground minus boundary "
        "probability exceeds this. Higher: fewer seeds, fewer split nuclei.",
    )
    mask_threshold: float = Field(
        0.5,
        ge=0.01,
        le=0.99,
        title="Mask threshold",
        description="Pixels with a foreground probability above this belong to an object. "
        "Lower: larger objects.",
    )
    min_size: int = Field(
        15,
        ge=0,
        le=10_000_000,
        title="Minimum size",
        description="Objects with fewer pixels (voxels in 3D) are removed.",
    )
    smoothing: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        title="Smoothing",
        description="Gaussian sigma (pixels, in Y/X) applied to the maps before thresholding; "
        "0 = none. Reduces over-seeding in noisy maps.",
    )
    anisotropy: float = Field(
        1.0,
        ge=0.05,
        le=50.0,
        title="Anisotropy (Z / XY)",
        description="3D only: Z spacing divided by the Y/X spacing; the smoothing along Z is "
        "divided by it.",
    )
    split_by_shape: bool = Field(
        False,
        title="Split by shape",
        description="Also split a seed region where its outline narrows (one seed per peak of "
        "the distance to its edge): separates touching nuclei the boundary map misses.",
    )
    split_depth: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        title="Split depth",
        description="Split by shape: a neck splits a region when it is this fraction of the "
        "region's half-width narrower than both sides. Lower: more splits.",
    )


PredictMode = Literal["2d", "3d", "t"]


class InstancePredictConfig(StrictConfig):
    """How an instance model is run over an image (before post-processing)."""

    version: int = Field(
        1, ge=1, le=1, title="Config version", description="Format version of this parameter set."
    )
    mode: PredictMode = Field(
        "2d",
        title="Mode",
        description="2d: one (Y, X) image; 3d: one (Z, Y, X) stack; t: a time series "
        "(T, Y, X) or (T, Z, Y, X), segmented frame by frame.",
    )
    diameter: float = Field(
        0.0,
        ge=0.0,
        le=2000.0,
        title="Nucleus diameter",
        description="Typical object diameter in pixels of this image. The image is rescaled "
        "so objects have the size the model was trained for; 0 = no rescaling.",
    )
    estimate_diameter: bool = Field(
        False,
        title="Estimate diameter",
        description="Measure the objects' diameter with a first pass of the model (on the "
        "first frame of a series) and rescale accordingly; 'diameter' is then ignored.",
    )
    test_time_augmentation: bool = Field(
        False,
        title="Test-time augmentation",
        description="Average the maps over the 8 flips / 90° rotations of the image: "
        "8x the prediction time, usually slightly cleaner outlines and splits.",
    )
    tile_size: int = Field(
        512,
        ge=32,
        le=4096,
        title="Tile size",
        description="Largest tile edge (pixels in Y/X) fed to the network at once.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )


class InstanceConfig(SemanticConfig):
    """Everything an instance model needs; saved as its ``config.yaml``.

    An instance model is a semantic model over the three classes background,
    interior and boundary (trained by the same loop), plus the target and
    post-processing parameters and the object size it was trained for.
    """

    task: Literal["instance"] = Field(
        "instance", title="Task", description="Which kind of model this is."
    )
    n_classes: int = Field(
        N_INSTANCE_CLASSES,
        ge=N_INSTANCE_CLASSES,
        le=N_INSTANCE_CLASSES,
        title="Classes",
        description="Background, interior and boundary.",
    )
    unet: UNetConfig = Field(
        default_factory=lambda: UNetConfig(depth=3, base_channels=32, out_channels=3),
        title="Network",
        description="U-Net architecture (3 output maps: background, interior, boundary).",
    )
    soft_targets: bool = Field(
        False,
        title="Soft targets when shrunk",
        description="Teach class shares instead of majority classes when the scale shrinks "
        "images. Off by default for instance models: the thin boundary class and the "
        "watershed thresholds were tuned on hard targets.",
    )
    targets: InstanceTargetConfig = Field(
        default_factory=InstanceTargetConfig,
        title="Targets",
        description="How instance labels become training targets.",
    )
    postprocessing: InstancePostConfig = Field(
        default_factory=InstancePostConfig,
        title="Post-processing",
        description="Default watershed parameters for this model.",
    )
    diameter: float = Field(
        0.0,
        ge=0.0,
        le=2000.0,
        title="Object diameter",
        description="Typical object diameter (pixels) in the images as the network sees them, "
        "i.e. after 'scale'. Prediction rescales images whose objects have another "
        "diameter to it. 0 = unknown (no rescaling).",
    )

    @model_validator(mode="after")
    def _no_zero_background(self):
        if self.zero_is_background:
            raise ValueError(
                "instance targets use 0 = not annotated; zero_is_background must be off"
            )
        return self
