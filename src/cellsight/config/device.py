"""Which compute device a job runs on."""

from typing import Literal

from pydantic import Field

from cellsight.config.base import StrictConfig

DeviceName = Literal["auto", "cpu", "cuda", "mps"]


class DeviceConfig(StrictConfig):
    """Device choice; ``auto`` picks CUDA, then Apple MPS, then the CPU."""

    device: DeviceName = Field(
        "auto",
        title="Device",
        description="auto = CUDA if present, else Apple MPS, else CPU.",
    )
