"""Cell Tracking Challenge (CTC) tracking folders: read and write.

A result folder holds one mask per frame, ``maskTTT.tif`` (3 digits, 4 when there are
more than 1000 frames), whose pixel values are track labels, and ``res_track.txt``
with one line ``L B E P`` per track: label, first frame, last frame, parent label
(0 = none). Ground truth uses ``man_trackTTT.tif`` and ``man_track.txt``. A CTC track
is present in every frame from B to E; a cell that is missing for some frames
continues under a new label whose parent is the old one.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellsight.io.atomic import atomic_folder, atomic_path, is_temporary
from cellsight.io.tiff import ImageReadError, read_image, write_image

MASK_PATTERNS = (r"^mask(\d+)\.tiff?$", r"^man_track(\d+)\.tiff?$", r"^man_seg(\d+)\.tiff?$")
TRACK_FILES = ("res_track.txt", "man_track.txt")
IMAGE_PATTERN = r"^t(\d+)\.tiff?$"


@dataclass
class CTCData:
    """A CTC tracking folder in memory.

    Attributes
    ----------
    labels : ndarray
        ``(T, [Z,] Y, X)`` masks; pixel value = CTC track label.
    table : ndarray of int, shape (K, 4)
        Rows ``(L, B, E, P)``.
    image : ndarray or None
        The raw frames ``tTTT.tif`` when found beside the masks.
    """

    labels: np.ndarray
    table: np.ndarray
    image: np.ndarray | None = None


def frame_digits(n_frames: int) -> int:
    """Digits of the frame number in file names: 3, or 4 beyond 1000 frames."""
    return 3 if n_frames <= 1000 else 4


def _numbered(folder: Path, pattern: str) -> list[tuple[int, Path]]:
    found = []
    for p in folder.iterdir():
        m = re.match(pattern, p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _stack(files: list[tuple[int, Path]], what: str) -> np.ndarray:
    frames = [t for t, _ in files]
    if frames != list(range(frames[0], frames[0] + len(frames))):
        raise ValueError(f"The {what} frames are not consecutive: found frames {frames[:10]}...")
    arrays = [read_image(p).data for _, p in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"The {what} files differ in shape: {sorted(shapes)}.")
    return np.stack(arrays)


def read_track_table(path: str | os.PathLike) -> np.ndarray:
    """Read ``res_track.txt`` / ``man_track.txt`` as an int array ``(K, 4)``."""
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
            raise ValueError(f"{path}, line {number}: expected 'L B E P' integers, got {line!r}.")
        rows.append([int(p) for p in parts])
    table = np.asarray(rows, np.int64).reshape(-1, 4)
    check_track_table(table, path.name)
    return table


def check_track_table(table: np.ndarray, name: str = "the track table") -> None:
    """Refuse an ``L B E P`` table that no tracking can produce.

    Every label is a positive id, listed once; a track begins no later than it ends;
    a parent is another track of the table that ends before its child begins.

    Raises
    ------
    ValueError
        Naming the first offending track.

    Examples
    --------
    >>> check_track_table(np.array([[1, 0, 4, 0], [2, 5, 9, 1], [3, 5, 7, 1]]))
    >>> check_track_table(np.array([[1, 3, 2, 0]]))
    Traceback (most recent call last):
    ...
    ValueError: the track table: track 1 begins at frame 3, after it ends (frame 2).
    """
    table = np.asarray(table, np.int64).reshape(-1, 4)
    ends = {}
    for label, begin, end, _ in table:
        if label <= 0 or begin < 0:
            raise ValueError(f"{name}: track {label} (begin {begin}): labels are ids >= 1 and "
                             "frames are >= 0.")
        if label in ends:
            raise ValueError(f"{name}: track {label} is listed twice.")
        if begin > end:
            raise ValueError(f"{name}: track {label} begins at frame {begin}, after it ends "
                             f"(frame {end}).")
        ends[int(label)] = int(end)
    for label, begin, _, parent in table:
        if parent == 0:
            continue
        if parent == label:
            raise ValueError(f"{name}: track {label} is its own parent.")
        if parent not in ends:
            raise ValueError(f"{name}: track {label} has parent {parent}, which is not a track "
                             "of the table.")
        if ends[int(parent)] >= begin:
            raise ValueError(f"{name}: track {label} begins at frame {begin}, but its parent "
                             f"{parent} lasts until frame {ends[int(parent)]}.")


def find_track_file(folder: Path) -> Path | None:
    """The track file of a CTC folder (``res_track.txt`` or ``man_track.txt``)."""
    for name in TRACK_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def find_masks(folder: Path) -> list[tuple[int, Path]]:
    """``(frame, path)`` of the mask files of a CTC folder (result or ground truth)."""
    for pattern in MASK_PATTERNS:
        files = _numbered(folder, pattern)
        if files:
            return files
    return []


def image_folder(folder: Path) -> Path | None:
    """Where the raw ``tTTT.tif`` frames of a CTC result / GT folder live, if anywhere."""
    candidates = [folder]
    if folder.name.endswith("_RES"):
        candidates.append(folder.parent / folder.name[:-4])
    if folder.name in ("TRA", "SEG") and folder.parent.name.endswith("_GT"):
        candidates.append(folder.parent.parent / folder.parent.name[:-3])
    for c in candidates:
        if c.is_dir() and _numbered(c, IMAGE_PATTERN):
            return c
    return None


def is_ctc_folder(path: str | os.PathLike) -> bool:
    """True for a folder with a CTC track file and mask files."""
    folder = Path(path)
    return folder.is_dir() and find_track_file(folder) is not None and bool(find_masks(folder))


def read_ctc(path: str | os.PathLike, with_image: bool = True) -> CTCData:
    """Read a CTC result or ground-truth tracking folder.

    Parameters
    ----------
    path : str or PathLike
        Folder with ``maskTTT.tif`` + ``res_track.txt`` (or ``man_trackTTT.tif`` +
        ``man_track.txt``).
    with_image : bool
        Also read the raw frames ``tTTT.tif`` from the folder or its sequence folder
        (``01`` for ``01_RES`` or ``01_GT/TRA``) when present.

    Returns
    -------
    CTCData

    Raises
    ------
    ValueError
        If the folder lacks a track file or masks, or they are inconsistent.

    Examples
    --------
    One cell (track 1) over two frames that divides into tracks 2 and 3 in frame 2:

    >>> import os, tempfile
    >>> masks = np.zeros((3, 16, 16), np.uint16)
    >>> masks[:2, 4:10, 4:10] = 1
    >>> masks[2, 2:6, 4:10], masks[2, 9:13, 4:10] = 2, 3
    >>> table = np.array([[1, 0, 1, 0], [2, 2, 2, 1], [3, 2, 2, 1]])
    >>> folder = write_ctc(os.path.join(tempfile.mkdtemp(), "01_RES"), masks, table)
    >>> data = read_ctc(folder)
    >>> data.labels.shape, data.table.tolist()
    ((3, 16, 16), [[1, 0, 1, 0], [2, 2, 2, 1], [3, 2, 2, 1]])
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder.")
    track_file = find_track_file(folder)
    masks = find_masks(folder)
    if track_file is None or not masks:
        raise ValueError(
            f"{folder} is not a CTC tracking folder: it needs res_track.txt (or "
            "man_track.txt) and maskTTT.tif (or man_trackTTT.tif) files."
        )
    labels = _stack(masks, "mask")
    table = read_track_table(track_file)
    if len(table) and table[:, 2].max() >= len(labels) + masks[0][0]:
        raise ValueError(f"{track_file.name} names frames beyond the {len(labels)} mask files.")
    present = np.unique(labels)
    present = present[present > 0]
    unlisted = np.setdiff1d(present, table[:, 0] if len(table) else [])
    if unlisted.size:
        raise ValueError(f"{track_file.name} does not list label {unlisted[0]} of the masks "
                         f"({unlisted.size} label(s) unlisted): every object needs a track line.")
    absent = np.setdiff1d(table[:, 0], present) if len(table) else unlisted
    if absent.size:
        raise ValueError(f"{track_file.name} lists track {absent[0]}, which is in no mask file "
                         f"({absent.size} such track(s)): the table and the masks disagree.")
    image = None
    if with_image and (img_dir := image_folder(folder)) is not None:
        try:
            image = _stack(_numbered(img_dir, IMAGE_PATTERN), "image")
        except (ImageReadError, ValueError):
            image = None
        if image is not None and image.shape != labels.shape:
            image = None
    return CTCData(labels=labels, table=table, image=image)


def write_track_table(path: str | os.PathLike, table: np.ndarray) -> Path:
    """Write ``L B E P`` lines atomically."""
    path = Path(path)
    text = "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in np.asarray(table, np.int64))
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def is_result_entry(name: str) -> bool:
    """True for the names a CTC result folder is made of (``maskTTT.tif``, ``res_track.txt``)."""
    return name == "res_track.txt" or re.match(MASK_PATTERNS[0], name) is not None


def write_ctc(
    folder: str | os.PathLike, labels: np.ndarray, table: np.ndarray, *, overwrite: bool = True
) -> Path:
    """Write masks and ``res_track.txt`` into ``folder``, as a unit.

    The result is written into a hidden temporary sibling and renamed into place when
    complete (:func:`cellsight.io.atomic.atomic_folder`): a crash leaves the earlier
    result (or none), never a mix of old and new frames. Entries of an existing
    folder that are not part of a CTC result (e.g. ``tracks.csv``) are kept.

    Parameters
    ----------
    folder : str or PathLike
    labels : ndarray
        ``(T, [Z,] Y, X)`` masks whose values are the labels of ``table``.
    table : ndarray, shape (K, 4)
        ``L B E P`` rows.
    overwrite : bool
        Replace an existing folder; otherwise raise FileExistsError.

    Returns
    -------
    pathlib.Path
        The folder.

    Examples
    --------
    >>> import os, tempfile
    >>> masks = np.zeros((2, 8, 8), np.uint16)
    >>> masks[:, 2:5, 2:5] = 1
    >>> folder = write_ctc(os.path.join(tempfile.mkdtemp(), "01_RES"), masks, [[1, 0, 1, 0]])
    >>> sorted(os.listdir(folder))
    ['mask000.tif', 'mask001.tif', 'res_track.txt']
    """
    folder = Path(folder)
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4):
        raise ValueError(f"CTC masks need shape (T, Y, X) or (T, Z, Y, X); got {labels.shape}.")
    if labels.size and labels.max() > np.iinfo(np.uint16).max:
        raise ValueError("CTC masks are 16-bit: a track label exceeds 65535.")
    digits = frame_digits(len(labels))
    axes = "YX" if labels.ndim == 3 else "ZYX"
    carry = ([n for n in os.listdir(folder) if not (is_result_entry(n) or is_temporary(n))]
             if folder.is_dir() else [])
    with atomic_folder(folder, overwrite=overwrite, carry=carry) as tmp:
        for t, frame in enumerate(labels):
            write_image(tmp / f"mask{t:0{digits}d}.tif", frame.astype(np.uint16), axes=axes,
                        compression="lzw")
        write_track_table(tmp / "res_track.txt", table)
    return folder


def read_series(path: str | os.PathLike) -> np.ndarray:
    """A time series from a T-stack TIFF or a folder of per-frame TIFFs.

    In a folder, CTC mask names (``maskTTT.tif``, ``man_trackTTT.tif``), then raw
    frame names (``tTTT.tif``), then any TIFFs ordered by the number in their name
    are used.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if not path.is_dir():
        return read_image(path).data
    files = find_masks(path) or _numbered(path, IMAGE_PATTERN)
    if not files:
        files = _numbered(path, r"^\D*?(\d+)\D*\.tiff?$")
    if not files:
        raise ValueError(f"{path} holds no numbered TIFF frames.")
    return _stack(files, "frame")
