"""npe2 reader: a CTC tracking folder opens as image + labels + tracks layers.

Returns plain LayerData tuples (no napari import). Conversion to tracks uses
:mod:`cellsight.core.tracking` (numpy / scipy only), imported on use.
"""

import os
from pathlib import Path

from cellsight.io.ctc import is_ctc_folder, read_ctc


def read_ctc_folder(path: str | list[str]) -> list[tuple]:
    """Read a CTC result / ground-truth folder into LayerData tuples."""
    from cellsight.core.tracking.convert import result_from_ctc
    from cellsight.core.tracking.tracks import napari_tracks

    folder = Path(path[0] if isinstance(path, list) else path)
    data = read_ctc(folder)
    result = result_from_ctc(data.labels, data.table)
    tracks, graph, features = napari_tracks(result.detections, result.parent, result.node_track)
    layers = []
    if data.image is not None:
        layers.append((data.image, {"name": f"{folder.name} image", "colormap": "gray"}, "image"))
    layers.append((result.labels, {"name": f"{folder.name} labels"}, "labels"))
    layers.append(
        (tracks, {"name": f"{folder.name} tracks", "graph": graph, "features": features}, "tracks")
    )
    return layers


def get_ctc_reader(path: str | list[str]):
    """npe2 reader contribution: :func:`read_ctc_folder` for a CTC folder, else None."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if len(paths) != 1 or not is_ctc_folder(paths[0]):
        return None
    return read_ctc_folder
