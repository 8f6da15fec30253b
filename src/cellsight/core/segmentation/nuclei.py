"""One-call nucleus segmentation with the built-in ``nuclei`` model.

The model is loaded once per process and kept (it is small). Used by the pipeline
and by benchmarks that need "the built-in model" as ``f(image) -> labels``.
"""

from functools import cache

import numpy as np

from cellsight.config.instances import InstancePostConfig, InstancePredictConfig
from cellsight.core.progress import ProgressCallback, StopCallback, never_stop, no_progress
from cellsight.core.segmentation.instance_model import (
    InstanceModel,
    load_builtin,
    segment_instances,
)


@cache
def builtin_nuclei_model() -> InstanceModel:
    """The built-in ``nuclei`` model (loaded on first use, then cached)."""
    return load_builtin("nuclei")


def segment_nuclei(
    image: np.ndarray,
    diameter: float | None = None,
    mode: str | None = None,
    post: InstancePostConfig | None = None,
    device: str = "auto",
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Separated nuclei in a 2D image, a 3D stack or a time series.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)``; ``(Z, Y, X)`` with ``mode="3d"``; ``(T, Y, X)`` or ``(T, Z, Y, X)``
        with ``mode="t"``. Default mode: ``2d`` for 2D input, otherwise ``t``.
    diameter : float, optional
        Typical nucleus diameter in pixels; None = measured by the model.
    mode : {"2d", "3d", "t"}, optional
    post : InstancePostConfig, optional
        Watershed parameters (default: the model's).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.

    Returns
    -------
    numpy.ndarray of int32
        Labels of the image's shape (ids consecutive per frame).
    """
    image = np.asarray(image)
    mode = mode or ("2d" if image.ndim == 2 else "t")
    config = InstancePredictConfig(
        mode=mode,
        diameter=diameter or 0.0,
        estimate_diameter=diameter is None,
        device=device,
    )
    return segment_instances(
        builtin_nuclei_model(), image, config, post, progress=progress, should_stop=should_stop
    )
