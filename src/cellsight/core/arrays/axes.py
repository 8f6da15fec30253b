"""Bring images of any layout into the ``(T, C, *spatial)`` frames a model works on."""

import numpy as np

AXIS_LETTERS = "TCZYX"


def check_axes(axes: str, shape: tuple[int, ...]) -> str:
    """Return ``axes`` upper-cased if they describe an array of ``shape``; refuse otherwise.

    Raises
    ------
    ValueError
        If the letter count differs from the dimensions, a letter is not one of
        ``TCZYX`` or repeats, or Y / X is missing.

    Examples
    --------
    >>> check_axes("tyx", (3, 8, 8))
    'TYX'
    >>> check_axes("TZYX", (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: axes 'TZYX' has 4 letters; the image has 2 dims (shape (8, 8)).
    """
    axes = axes.upper()
    if len(axes) != len(shape):
        raise ValueError(f"axes {axes!r} has {len(axes)} letters; the image has {len(shape)} "
                         f"dims (shape {tuple(shape)}).")
    if set(axes) - set(AXIS_LETTERS) or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} must use each of the letters {AXIS_LETTERS} at most once.")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain Y and X.")
    return axes


def _from_letters(image: np.ndarray, axes: str, ndim: int, in_channels: int) -> np.ndarray:
    axes = check_axes(axes, image.shape)
    if ndim == 2 and "Z" in axes:
        raise ValueError(
            f"The model is 2D but the image has a Z axis (axes {axes!r}); use a 3D model, "
            "or call the Z axis T to segment the stack slice by slice."
        )
    if ndim == 3 and "Z" not in axes:
        raise ValueError(f"The model is 3D but the image has no Z axis (axes {axes!r}).")
    order = [a for a in AXIS_LETTERS if a in axes]
    data = np.transpose(image, [axes.index(a) for a in order])
    if "C" not in axes:
        data = data[:, None] if "T" in axes else data[None]
    if "T" not in axes:
        data = data[None]
    return data


def _expected(ndim: int, in_channels: int, is_timeseries: bool) -> str:
    return ("T" if is_timeseries else "") + ("C" if in_channels > 1 else "") + "ZYX"[-ndim:]


def to_frames(
    image: np.ndarray,
    ndim: int,
    in_channels: int = 1,
    axes: str | None = None,
    is_timeseries: bool = False,
) -> tuple[np.ndarray, bool]:
    """Return the image as ``(T, C, *spatial)`` and whether it had a time axis.

    Parameters
    ----------
    image : numpy.ndarray
    ndim : {2, 3}
        Spatial dimensions the model works on.
    in_channels : int
        Channels the model expects.
    axes : str, optional
        One letter per image dimension from ``TCZYX`` (e.g. ``"TYX"``, ``"ZCYX"``).
        Without it the layout is ``[T][C]{Z}YX`` with T only if ``is_timeseries``
        and C only if the model has several input channels.
    is_timeseries : bool
        The first axis is time (or any stack to handle frame by frame).

    Returns
    -------
    frames : numpy.ndarray
        ``(T, C, *spatial)`` view or copy of ``image``.
    has_time : bool

    Raises
    ------
    ValueError
        If the image does not fit the model (a 2D model on 3D data, channel count).

    Examples
    --------
    >>> to_frames(np.zeros((5, 32, 32)), 2, is_timeseries=True)[0].shape
    (5, 1, 32, 32)
    """
    image = np.asarray(image)
    if axes:
        frames = _from_letters(image, axes, ndim, in_channels)
        has_time = "T" in axes.upper()
    else:
        want = _expected(ndim, in_channels, is_timeseries)
        if image.ndim != len(want):
            hint = ""
            if ndim == 2 and image.ndim == len(want) + 1 and not is_timeseries:
                hint = (
                    " A 2D model on 3D data: mark the first axis as time (is_timeseries / "
                    "axes='TYX') to segment frame by frame, or use a 3D model."
                )
            raise ValueError(
                f"The {ndim}D model expects an image with axes {want} ({len(want)} dims); "
                f"got shape {image.shape}.{hint}"
            )
        frames = image if is_timeseries else image[None]
        if in_channels == 1:
            frames = frames[:, None]
        has_time = is_timeseries
    if frames.shape[1] != in_channels:
        raise ValueError(
            f"The model expects {in_channels} channel(s); the image has {frames.shape[1]}."
        )
    return frames, has_time
