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
    config: InstancePredictConfig | None = None,
    post: InstancePostConfig | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> np.ndarray:
    """Separated nuclei in a 2D image, a 3D stack or a time series, with the built-in model.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)``; ``(Z, Y, X)`` with mode ``3d``; ``(T, Y, X)`` or ``(T, Z, Y, X)``
        with mode ``t``.
    config : InstancePredictConfig, optional
        Mode, nucleus diameter, device... Default: mode ``2d`` for 2D input, otherwise
        ``t``, and the diameter measured by the model.
    post : InstancePostConfig, optional
        Watershed parameters (default: the model's).
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    numpy.ndarray of int32
        Labels of the image's shape (ids consecutive per frame).

    Examples
    --------
    >>> image = np.zeros((64, 64), np.float32); image[20:40, 20:40] = 1.0
    >>> labels = segment_nuclei(image, InstancePredictConfig(diameter=20, device="cpu"))
    >>> labels.shape, labels.dtype
    ((64, 64), dtype('int32'))
    """
    image = np.asarray(image)
    if config is None:
        config = InstancePredictConfig(mode="2d" if image.ndim == 2 else "t",
                                       estimate_diameter=True)
    elif image.ndim == 2 and config.mode != "2d":
        config = config.model_copy(update={"mode": "2d"})
    return segment_instances(
        builtin_nuclei_model(), image, config, post, progress=progress, should_stop=should_stop
    )
