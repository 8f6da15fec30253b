"""Guess what the axes of a layer's array are, from its shape and what the file said.

One place for the guesses every dock needs: which axis strings an array may have (the
most likely first), and whether a model should see it as one 2D image, one 3D stack or a
series of frames.
"""

AXES_CHOICES = {
    2: ("YX",),
    3: ("TYX", "ZYX", "CYX"),
    4: ("TZYX", "TCYX", "CZYX"),
    5: ("TCZYX",),
}


def axes_choices(shape, rgb: bool = False, known: str = "") -> tuple[str, ...]:
    """Axis strings an array of ``shape`` may have, the most likely first.

    Parameters
    ----------
    shape : tuple of int
        The array's shape (RGB arrays end with their colour axis).
    rgb : bool
        Whether the last axis holds RGB(A) colours.
    known : str
        Axes recorded in the file (``layer.metadata["axes"]``); put first when they fit.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> axes_choices((5, 64, 64))
    ('TYX', 'ZYX', 'CYX')
    >>> axes_choices((5, 64, 64), known="zyx")
    ('ZYX', 'TYX', 'CYX')
    >>> axes_choices((64, 64, 3), rgb=True)
    ('YXC',)
    """
    ndim = len(shape)
    choices = AXES_CHOICES.get(ndim - (1 if rgb else 0), ())
    if rgb:
        choices = tuple(c + "C" for c in choices if "C" not in c)
    known = str(known or "").upper()
    if len(known) == ndim and known not in choices:
        choices = (known, *choices)
    elif known in choices:
        choices = (known, *(c for c in choices if c != known))
    return choices


def guess_mode(ndim: int, model_ndim: int = 2, rgb: bool = False) -> str:
    """How a model of ``model_ndim`` spatial dims should read an ``ndim`` array.

    Returns ``"2d"`` (one image), ``"3d"`` (one stack) or ``"t"`` (frames, first axis).

    Examples
    --------
    >>> guess_mode(2), guess_mode(3), guess_mode(3, model_ndim=3), guess_mode(4, model_ndim=3)
    ('2d', 't', '3d', 't')
    >>> guess_mode(3, rgb=True)
    '2d'
    """
    spatial = ndim - (1 if rgb else 0)
    if spatial > model_ndim:
        return "t"
    return "3d" if spatial == 3 and model_ndim == 3 else "2d"
