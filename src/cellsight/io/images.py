"""Reading any image file the commands take: TIFF (with axes and scale), PNG, JPEG, BMP.

TIFFs go through :func:`cellsight.io.tiff.read_image`; other pictures through imageio,
after a look at the file's first bytes, so that a file whose content does not match its
name (a text file called ``.png``) gets one line saying so, not a decoder's advice to
install plugins.
"""

import os
from pathlib import Path

import numpy as np

from cellsight.io.tiff import ImageData, ImageReadError, _one_line, is_tiff, read_image

#: picture formats read through imageio: suffixes -> (name, signatures of the first bytes)
PICTURES = {
    (".png",): ("PNG", (b"\x89PNG\r\n\x1a\n",)),
    (".jpg", ".jpeg"): ("JPEG", (b"\xff\xd8\xff",)),
    (".bmp",): ("BMP", (b"BM",)),
}


def _picture_kind(path: Path) -> tuple[str, tuple[bytes, ...]] | None:
    suffix = path.suffix.lower()
    for suffixes, kind in PICTURES.items():
        if suffix in suffixes:
            return kind
    return None


def check_image_file(path: str | os.PathLike) -> Path:
    """Refuse, with one line, a path that is missing, a folder, or not a file cellsight reads.

    Raises
    ------
    ImageReadError
        Naming the problem: no such file, a folder, an unknown format, or content that
        does not match the name.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file (give the images in it, "
                             f"e.g. {path / '*.tif'}).")
    if not path.is_file():
        raise ImageReadError(f"Cannot read {path}: no such file.")
    if is_tiff(path):
        return path
    kind = _picture_kind(path)
    if kind is None:
        raise ImageReadError(f"Cannot read {path}: cellsight reads TIFF, PNG, JPEG and BMP "
                             "images (and OME-Zarr folders).")
    name, signatures = kind
    with open(path, "rb") as f:
        head = f.read(16)
    if not any(head.startswith(s) for s in signatures):
        raise ImageReadError(f"{path} is not a {name} image (its content does not start like "
                             f"one{'; the file is empty' if not head else ''}).")
    return path


def read_any(path: str | os.PathLike) -> ImageData:
    """Read a TIFF (keeping axes and scale) or a PNG / JPEG / BMP picture (RGB kept as is).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    ImageData
        Pictures get axes ``YX`` or ``YXS`` and unit scale.

    Raises
    ------
    ImageReadError
        With one line naming the file and the problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "notes.png"
    >>> _ = bad.write_text("not a picture")
    >>> read_any(bad)
    Traceback (most recent call last):
    ...
    cellsight.io.tiff.ImageReadError: ... is not a PNG image (its content does not start like one).
    """
    path = check_image_file(path)
    if is_tiff(path):
        return read_image(path)
    import imageio.v3 as iio

    try:
        data = np.asarray(iio.imread(path))
    except MemoryError:
        raise
    except Exception as exc:  # damaged or truncated pictures
        raise ImageReadError(f"Cannot read {path}: the image is damaged or truncated "
                             f"({_one_line(exc)}).") from exc
    if data.ndim not in (2, 3) or data.size == 0:
        raise ImageReadError(f"Cannot read {path}: not a 2D picture (shape {data.shape}).")
    axes = "YXS" if data.ndim == 3 else "YX"
    return ImageData(data=data, axes=axes, scale=(1.0,) * data.ndim, metadata={"path": str(path)})
