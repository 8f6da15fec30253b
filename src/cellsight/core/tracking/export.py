"""Write a tracking result, or a napari Tracks layer's data, as CTC, GEFF or CSV.

One code path for every writer of tracks: the Track dock's Export, the npe2 writers
for Tracks layers and ``cellsight track`` build the same tables (:mod:`.convert`) and
hand them to the same file writers (:mod:`cellsight.io.ctc`,
:mod:`cellsight.io.geff_export`, :mod:`cellsight.io.tracks_csv`), so the files are
identical for the same tracking.
"""

import os
from pathlib import Path

import numpy as np

from cellsight.core.progress import ProgressEvent, no_progress
from cellsight.core.tracking.convert import (
    graph_from_table,
    node_table,
    to_ctc,
    tracks_layer_table,
)
from cellsight.core.tracking.tracks import TrackingResult

#: format -> (description, file name the CLI writes into its output folder)
FORMATS = {
    "ctc": ("CTC folder (masks + res_track.txt)", None),
    "geff": ("GEFF graph (zarr store)", "tracks.geff"),
    "csv": ("CSV table (one row per cell per frame)", "tracks.csv"),
}
GEFF_SUFFIXES = (".geff", ".zarr")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown tracks format {fmt!r}; choose one of {sorted(FORMATS)}.")


def target_exists(path: str | os.PathLike, fmt: str) -> bool:
    """Whether writing ``fmt`` to ``path`` would replace something.

    A CTC target counts as existing only when the folder already holds a CTC result
    (``maskTTT.tif`` or ``res_track.txt``): other files in it are kept by
    :func:`cellsight.io.ctc.write_ctc`, so an empty or unrelated folder is fine.
    """
    from cellsight.io.ctc import is_result_entry

    _check_format(fmt)
    path = Path(path)
    if fmt == "ctc" and path.is_dir():
        return any(is_result_entry(name) for name in os.listdir(path))
    return path.exists()


def with_suffix(path: str | os.PathLike, fmt: str) -> Path:
    """``path`` with the format's usual ending added when it has none (``.csv``, ``.geff``)."""
    _check_format(fmt)
    path = Path(path)
    name = path.name.lower()
    if fmt == "csv" and not name.endswith(".csv"):
        return path.with_name(path.name + ".csv")
    if fmt == "geff" and not name.endswith(GEFF_SUFFIXES):
        return path.with_name(path.name + ".geff")
    return path


def _refuse_existing(path: Path, fmt: str, overwrite: bool) -> None:
    if not overwrite and target_exists(path, fmt):
        raise FileExistsError(f"{path} already exists; choose another name or allow replacing it.")


def write_table(path: str | os.PathLike, columns: dict[str, np.ndarray], fmt: str,
                overwrite: bool = False) -> Path:
    """Write a node table (``node_id``, ``t``, ``[z,] y, x``, ``track_id``, ``parent_id``, ...).

    Parameters
    ----------
    path : str or PathLike
        The CSV file or the GEFF store.
    columns : dict of ndarray
        From :func:`~cellsight.core.tracking.convert.node_table` or
        :func:`~cellsight.core.tracking.convert.tracks_layer_table`.
    fmt : {"geff", "csv"}
    overwrite : bool
        Replace an existing file; otherwise raise FileExistsError.

    Returns
    -------
    pathlib.Path
    """
    if fmt not in ("geff", "csv"):
        raise ValueError(f"A node table is written as 'geff' or 'csv', not {fmt!r}.")
    path = Path(path)
    _refuse_existing(path, fmt, overwrite)
    if fmt == "csv":
        from cellsight.io.tracks_csv import write_tracks_csv

        return write_tracks_csv(path, columns)
    from cellsight.io.geff_export import write_geff

    axes = ["t"] + [a for a in ("z", "y", "x") if a in columns]
    return write_geff(path, graph_from_table(columns), axes, overwrite=overwrite)


def export_tracks(
    result: TrackingResult,
    labels: np.ndarray,
    path: str | os.PathLike,
    fmt: str,
    overwrite: bool = False,
    progress=no_progress,
    should_stop=None,
) -> Path:
    """Write a (possibly edited) tracking result as a CTC folder, a GEFF store or a CSV.

    Parameters
    ----------
    result : TrackingResult
        The tracking; read only.
    labels : ndarray
        The input labels the detections were measured on (for the CTC masks).
    path : str or PathLike
        The CTC folder, the GEFF store (``.geff`` / ``.zarr``) or the CSV file.
    fmt : {"ctc", "geff", "csv"}
    overwrite : bool
        Replace an existing target; otherwise raise FileExistsError. A CTC folder
        keeps the files in it that are not part of a CTC result.
    progress : callable, optional
        Receives a :class:`~cellsight.core.progress.ProgressEvent` when done.
    should_stop : callable, optional
        Unused (writing is one step); accepted so the GUI's job helper can call this.

    Returns
    -------
    pathlib.Path
        What was written.

    Examples
    --------
    >>> import tempfile
    >>> from cellsight.core.tracking import track, TrackingConfig
    >>> lab = np.zeros((3, 16, 16), np.uint16)
    >>> lab[:, 4:8, 4:8] = 1
    >>> result = track(lab, config=TrackingConfig(solver="greedy"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = export_tracks(result, lab, Path(tmp) / "tracks.csv", "csv")
    ...     out.read_text().splitlines()[0]
    'node_id,t,y,x,track_id,parent_id,label,area'
    """
    _check_format(fmt)
    path = Path(path)
    _refuse_existing(path, fmt, overwrite)
    if fmt == "ctc":
        from cellsight.io.ctc import write_ctc

        masks, table = to_ctc(result, labels)
        out = write_ctc(path, masks, table, overwrite=True)  # checked above; keeps other files
    else:
        out = write_table(path, node_table(result), fmt, overwrite=overwrite)
    progress(ProgressEvent(1, 1, f"written to {out}"))
    return out


def write_tracks_layer(path: str | os.PathLike, data, graph: dict | None, fmt: str,
                       overwrite: bool = False) -> Path:
    """Write a napari Tracks layer's ``data`` and ``graph`` as GEFF or CSV.

    Coordinates are written as the layer holds them (data coordinates); a daughter
    track's first point gets the parent track's last earlier point as parent.
    """
    return write_table(path, tracks_layer_table(data, graph), fmt, overwrite=overwrite)
