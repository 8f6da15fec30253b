"""Parameters of click-to-segment (one click per object, refined by more clicks)."""

from typing import Literal

from pydantic import Field

from cellsight.config.base import StrictConfig
from cellsight.config.device import DeviceName
from cellsight.config.unet import UNetConfig


class ClickModelConfig(StrictConfig):
    """The click network and how its input is encoded; saved with the model as ``config.yaml``.

    The network sees a square window of the image around the object, resized to
    ``crop_size`` pixels, with three more channels: positive clicks, negative clicks
    (discs of ``click_radius`` pixels in the resized window) and the previous mask.
    It returns one map of logits: the mask of the object clicked.
    """

    version: int = Field(1, ge=1, le=1, title="Config version",
                         description="Format version of this parameter set.")
    task: Literal["clicks"] = Field("clicks", title="Task",
                                    description="Model kind stored in the model folder.")
    unet: UNetConfig = Field(
        default_factory=lambda: UNetConfig(in_channels=4, out_channels=1, depth=4,
                                           base_channels=16),
        title="Network", description="U-Net with 4 input channels and 1 output channel.")
    crop_size: int = Field(96, ge=32, le=512, title="Crop size",
                           description="Side of the resized window the network sees (pixels).")
    click_radius: float = Field(5.0, ge=1.0, le=20.0, title="Click radius",
                                description="Radius of the disc drawn for each click in the "
                                "resized window (pixels).")
    low_percentile: float = Field(1.0, ge=0.0, le=50.0, title="Low percentile",
                                  description="Image percentile mapped to 0.")
    high_percentile: float = Field(99.8, ge=50.0, le=100.0, title="High percentile",
                                   description="Image percentile mapped to 1.")


class ClickConfig(StrictConfig):
    """How clicks become a mask (:func:`cellsight.core.curation.clicks.segment_from_clicks`)."""

    model: str = Field("clicks", title="Click model",
                       description="Built-in model name or a click-model folder.")
    first_window: int = Field(
        128, ge=16, le=2048, title="First window (px)",
        description="Side of the window around a first click, in image pixels. The window "
        "grows by itself when the object fills it and zooms in when the object is small.")
    context: float = Field(
        1.6, ge=1.1, le=4.0, title="Context",
        description="After the first pass the window is this many times the object's size.")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, title="Mask threshold",
                             description="Probability above which a pixel belongs to the object.")
    max_passes: int = Field(4, ge=1, le=8, title="Passes per click",
                            description="At most this many network passes per click (window "
                            "growth and zoom-in).")
    follow_min_overlap: float = Field(
        0.25, ge=0.0, le=1.0, title="Follow: minimum overlap",
        description="Following an object to the next slice or frame stops when the new mask "
        "overlaps the previous one by less than this fraction (IoU).")
    follow_min_contrast: float = Field(
        0.12, ge=0.0, le=1.0, title="Follow: minimum contrast",
        description="Following stops when the object's contrast with its surroundings falls "
        "below this fraction of its contrast where it was clicked (the object has ended).")
    follow_max_steps: int = Field(200, ge=1, le=10000, title="Follow: maximum steps",
                                  description="At most this many slices / frames are followed.")
    device: DeviceName = Field("auto", title="Device",
                               description="auto = CUDA, then Apple MPS, then CPU.")
    mode: Literal["2d", "3d", "t"] = Field(
        "2d", title="Mode",
        description="2d: one image; 3d: a (Z, Y, X) stack, the object is followed to the "
        "neighbouring slices; t: a (T, Y, X) series, 'follow' seeds the next frame.")
