"""Parameter sets as strict, versioned pydantic models (no torch, no Qt)."""

from cellsight.config.base import StrictConfig
from cellsight.config.device import DeviceConfig

__all__ = ["StrictConfig", "DeviceConfig"]
