"""Export tracks as GEFF (graph exchange file format, a zarr store) with the ``geff`` package."""

import os
import shutil
from pathlib import Path

from cellsight.io.atomic import replace_folder


def write_geff(
    path: str | os.PathLike, graph, axis_names: list[str], overwrite: bool = True
) -> Path:
    """Write a ``networkx.DiGraph`` of tracked cells as a GEFF zarr store.

    Parameters
    ----------
    path : str or PathLike
        Destination folder, conventionally ending in ``.geff`` or ``.zarr``. It is
        written beside the destination first and moved into place when complete.
    graph : networkx.DiGraph
        Nodes carry ``t`` and the spatial coordinates named in ``axis_names``.
    axis_names : list of str
        e.g. ``["t", "y", "x"]``; the first is time, the others space.
    overwrite : bool
        Replace an existing store at ``path``.

    Returns
    -------
    pathlib.Path
    """
    import geff

    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass overwrite=True to replace it.")
    missing = [a for a in axis_names if any(a not in d for _, d in graph.nodes(data=True))]
    if missing:
        raise ValueError(f"Graph nodes lack the axis attributes {missing}.")
    tmp = path.with_name(f".{path.name}.part")
    if tmp.exists():
        shutil.rmtree(tmp)
    types = ["time"] + ["space"] * (len(axis_names) - 1)
    try:
        geff.write(graph, str(tmp), axis_names=list(axis_names), axis_types=types)
        replace_folder(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path
