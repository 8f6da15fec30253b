"""Batches of files on the block engine: in parallel across files, resumable, never half-written.

Every output is written under a temporary name and renamed when complete, so an output
that exists is complete: a re-run skips it (unless ``overwrite``) and does only the rest.
A file that cannot be read or processed is reported in its row and the batch goes on.
``summary.csv`` (file, output, status, objects, seconds, error) is written to the output
folder at the end, also after a stop.
"""

import csv
import glob
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cellsight.core.blocks.engine import Engine, run_blocks
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    StopCallback,
    never_stop,
    no_progress,
)
from cellsight.io.atomic import remove_stale_parts

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")
SUMMARY_FIELDS = ("file", "output", "status", "objects", "seconds", "error")


@dataclass(frozen=True)
class BatchItem:
    """One input file and the output it gets."""

    source: str
    output: str


@dataclass
class BatchRow:
    """One line of ``summary.csv``."""

    file: str
    output: str
    status: str  # done, skipped, error, stopped
    objects: int | str = ""
    seconds: float | str = ""
    error: str = ""


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named by ``inputs``: files, folders (their images) and glob patterns.

    Examples
    --------
    >>> expand_inputs(["/nonexistent/*.tif"])
    Traceback (most recent call last):
    ...
    ValueError: No image files found in: /nonexistent/*.tif
    """
    found: list[Path] = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir() and path.suffix.lower() != ".zarr":
            found.extend(p for p in sorted(path.iterdir()) if _is_image(p))
        elif path.exists():
            found.append(path)
        else:
            found.extend(Path(p) for p in sorted(glob.glob(str(entry))) if _is_image(Path(p)))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise ValueError("No image files found in: " + ", ".join(map(str, inputs)))
    return unique


def _is_image(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def plan_outputs(files: Sequence[Path], out_dir: str | os.PathLike, suffix: str,
                 keep_tif_names: bool = False) -> list[BatchItem]:
    """One output per input in ``out_dir``: ``<name><suffix>`` (``name`` without extensions).

    With ``keep_tif_names`` a TIFF input's output keeps its file name.

    Examples
    --------
    >>> [i.output for i in plan_outputs([Path("a/x.ome.tif")], "out", "_labels.tif")]
    ['out/x_labels.tif']
    >>> [i.output for i in plan_outputs([Path("a/x.tif"), Path("b/y.png")], "o", ".tif", True)]
    ['o/x.tif', 'o/y.tif']
    """
    items, seen = [], {}
    for f in files:
        stem = f.name.split(".")[0]
        keep = keep_tif_names and f.suffix.lower() in (".tif", ".tiff")
        out = Path(out_dir) / (f.name if keep else f"{stem}{suffix}")
        if out in seen:
            raise ValueError(f"{f} and {seen[out]} share a file name: both would write {out}; "
                             "rename one.")
        seen[out] = f
        items.append(BatchItem(str(f), str(out)))
    return items


def _guarded(item: BatchItem, work: Callable, *args: Any) -> BatchRow:
    """Run ``work(item, *args)`` and turn its result or its error into a row."""
    started = time.monotonic()
    try:
        info = work(item, *args) or {}
    except Exception as exc:  # one bad file must not stop the batch: report it
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BatchRow(item.source, item.output, "error", error=message,
                        seconds=round(time.monotonic() - started, 2))
    return BatchRow(item.source, item.output, "done", info.get("objects", ""),
                    round(time.monotonic() - started, 2))


def run_batch(
    engine: Engine,
    work: Callable[..., dict | None],
    items: Sequence[BatchItem],
    *args: Any,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> list[BatchRow]:
    """Run ``work(item, *args)`` for every item whose output is missing; write summary.csv.

    ``work`` reads ``item.source`` and writes ``item.output`` atomically (temporary name +
    rename), returning e.g. ``{"objects": n}``. Returns the rows in input order; a stop
    marks the unfinished rows ``stopped`` and raises :class:`Cancelled` with the rows as
    ``partial`` (after writing the summary).

    Examples
    --------
    Threshold two images and count the objects; one file is broken, the batch goes on, and
    a second run skips what is done:

    >>> import os, tempfile
    >>> from scipy import ndimage as ndi
    >>> from cellsight.io.tiff import read_image, write_image, write_labels
    >>> src, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for name, n in [("a.tif", 2), ("b.tif", 3)]:
    ...     image = np.zeros((8, 16), np.uint8)
    ...     image[2:5, 1:2 * n * 2:4] = 200
    ...     _ = write_image(os.path.join(src, name), image)
    >>> _ = open(os.path.join(src, "c.tif"), "w").write("not an image")
    >>> def count(item):
    ...     labels, n = ndi.label(read_image(item.source).data > 100)
    ...     write_labels(item.output, labels)
    ...     return {"objects": n}
    >>> items = plan_outputs(expand_inputs([src]), out, "_labels.tif")
    >>> with Engine() as engine:
    ...     rows = run_batch(engine, count, items, out_dir=out)
    >>> [(os.path.basename(r.file), r.status, r.objects) for r in rows]
    [('a.tif', 'done', 2), ('b.tif', 'done', 3), ('c.tif', 'error', '')]
    >>> with Engine() as engine:
    ...     again = run_batch(engine, count, items, out_dir=out)
    >>> [r.status for r in again], sorted(os.listdir(out))[-1]
    (['skipped', 'skipped', 'error'], 'summary.csv')
    """
    rows: dict[int, BatchRow] = {}
    todo = []
    for i, item in enumerate(items):
        if Path(item.output).exists() and not overwrite:
            rows[i] = BatchRow(item.source, item.output, "skipped")
        else:
            remove_stale_parts(item.output)
            todo.append(i)
    stopped = None
    try:
        done = run_blocks(engine, _guarded, [items[i] for i in todo], work, *args,
                          progress=progress, should_stop=should_stop, message="files")
    except Cancelled as exc:
        done, stopped = exc.partial or {}, exc
    for k, i in enumerate(todo):
        rows[i] = done.get(k) or BatchRow(items[i].source, items[i].output, "stopped")
    ordered = [rows[i] for i in range(len(items))]
    write_summary(ordered, out_dir)
    if stopped is not None:
        raise Cancelled("Batch stopped; finished outputs are kept.", partial=ordered)
    return ordered


def write_summary(rows: Sequence[BatchRow], out_dir: str | os.PathLike) -> Path:
    """Write ``summary.csv`` into ``out_dir`` atomically."""
    from cellsight.io.atomic import atomic_path

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    path = Path(out_dir) / "summary.csv"
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path
