"""Checks shared by the prediction parameter sets (axis letters, tile size)."""

#: letters of image axes: time, channel, Z, Y, X
AXIS_LETTERS = "TCZYX"


def check_axes(axes: str, allowed: str = AXIS_LETTERS) -> str:
    """Return ``axes`` upper-cased; raise ``ValueError`` naming what is wrong with it.

    ``""`` (guess the axes) is returned as is; otherwise every letter must be one of
    ``allowed``, appear once, and Y and X must both be there.

    Examples
    --------
    >>> check_axes("tyx")
    'TYX'
    >>> check_axes("TQYX")
    Traceback (most recent call last):
    ...
    ValueError: axes 'TQYX': letter(s) Q not among TCZYX.
    """
    axes = axes.upper()
    if not axes:
        return axes
    bad = "".join(sorted(set(axes) - set(allowed), key=axes.index))
    if bad:
        raise ValueError(f"axes {axes!r}: letter(s) {', '.join(bad)} not among {allowed}.")
    repeated = "".join(sorted({a for a in axes if axes.count(a) > 1}, key=axes.index))
    if repeated:
        raise ValueError(f"axes {axes!r}: letter(s) {', '.join(repeated)} given more than once.")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain Y and X.")
    return axes


#: smallest tile edge a prediction config accepts (0 = the tiler's default)
MIN_TILE = 16


def check_tile_size(value: int) -> int:
    """Return ``value`` if it is 0 (the default) or at least :data:`MIN_TILE`; else raise."""
    if 0 < value < MIN_TILE:
        raise ValueError(f"tile_size must be 0 (the default) or at least {MIN_TILE}; got {value}.")
    return value
