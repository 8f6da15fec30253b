"""Parameter sets as strict, versioned pydantic models (no torch, no Qt)."""

from cellsight.config.base import StrictConfig
from cellsight.config.device import DeviceConfig
from cellsight.config.unet import UNetConfig

__all__ = ["StrictConfig", "DeviceConfig", "UNetConfig"]
