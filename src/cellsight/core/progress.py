"""Progress reporting shared by every long-running core function.

Core functions take ``progress`` (a callable receiving :class:`ProgressEvent`) and
``should_stop`` (a callable returning True when the user asked to stop). They never
import a GUI; the widgets and the CLI inject their own callables.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes
    ----------
    step : int
        Units of work done so far.
    total : int
        Units of work in all (0 when unknown).
    message : str
        Short human-readable description of the current stage.
    values : dict
        Extra numbers for live displays, e.g. ``{"loss": 0.31, "val_loss": 0.35}``.
    """

    step: int
    total: int = 0
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Fraction done in [0, 1] (0 when the total is unknown)."""
        return min(1.0, self.step / self.total) if self.total else 0.0


ProgressCallback = Callable[[ProgressEvent], None]
StopCallback = Callable[[], bool]


def no_progress(event: ProgressEvent) -> None:
    """Ignore progress (the default callback)."""


def never_stop() -> bool:
    """Never ask to stop (the default ``should_stop``)."""
    return False


class Cancelled(Exception):
    """Raised inside a core function when ``should_stop()`` turned True.

    ``partial`` holds whatever was finished before the stop (may be None).
    """

    def __init__(self, message: str = "Stopped by the user.", partial: Any = None):
        super().__init__(message)
        self.partial = partial
