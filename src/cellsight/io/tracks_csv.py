"""Tracks as a CSV table: one row per cell per frame."""

import csv
import io
import os
from pathlib import Path

import numpy as np

from cellsight.io.atomic import atomic_path


def write_tracks_csv(path: str | os.PathLike, columns: dict[str, np.ndarray]) -> Path:
    """Write equal-length columns as CSV (header row first), atomically.

    Raises
    ------
    ValueError
        If the columns differ in length.
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"CSV columns differ in length: {sorted(lengths)}.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    arrays = [np.asarray(v) for v in columns.values()]
    for row in zip(*arrays, strict=True):
        writer.writerow([f"{v:.4f}" if isinstance(v, np.floating) else v for v in row])
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path


def read_tracks_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a table written by :func:`write_tracks_csv` (numbers parsed)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise ValueError(f"{path} is empty.")
    header, body = rows[0], rows[1:]
    return {h: np.array([float(r[i]) for r in body]) for i, h in enumerate(header)}
