"""Conversions between a TrackingResult and the CTC representation (masks + L B E P)."""

import numpy as np

from cellsight.core.tracking.detections import detect
from cellsight.core.tracking.tracks import TrackingResult, assign_tracks, relabel


def ctc_segments(result) -> tuple[np.ndarray, np.ndarray]:
    """CTC label of every detection and the ``L B E P`` table of a TrackingResult.

    Tracks are split where a gap was closed; the later part gets a new label whose
    parent is the earlier part. Deleted detections get label 0.
    """
    det, parent, node_track = result.detections, result.parent, result.node_track
    alive = np.flatnonzero(node_track > 0)
    order = alive[np.lexsort((det.t[alive], node_track[alive]))]
    ctc = np.zeros(len(node_track), np.int64)
    next_label = int(node_track.max(initial=0)) + 1
    rows: list[list[int]] = []
    for n in order:
        n = int(n)
        p = int(parent[n])
        same_track = p >= 0 and node_track[p] == node_track[n]
        if same_track and det.t[n] == det.t[p] + 1:
            ctc[n] = ctc[p]
            rows[-1][2] = int(det.t[n])
            continue
        if same_track:  # gap inside a track: continue under a new label
            label, next_label = next_label, next_label + 1
        else:
            label = int(node_track[n])
        ctc[n] = label
        rows.append([label, int(det.t[n]), int(det.t[n]), int(ctc[p]) if p >= 0 else 0])
    return ctc, np.asarray(rows, np.int64).reshape(-1, 4)


def to_ctc(result: TrackingResult, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTC masks and ``L B E P`` table of a TrackingResult.

    ``labels`` are the input labels the detections were measured on.

    Examples
    --------
    >>> from cellsight.core.tracking import track
    >>> lab = np.zeros((2, 16, 16), np.uint16)
    >>> lab[:, 4:9, 4:9] = [[3]], [[8]]
    >>> masks, table = to_ctc(track(lab), lab)
    >>> table.tolist()  # L B E P: track 1 from frame 0 to 1, no parent
    [[1, 0, 1, 0]]
    >>> np.unique(masks).tolist()
    [0, 1]
    """
    ctc, table = ctc_segments(result)
    return relabel(labels, result.detections, ctc), table


def result_from_ctc(labels: np.ndarray, table: np.ndarray) -> TrackingResult:
    """Turn CTC masks + table into a TrackingResult (editable, exportable).

    Track ids keep the CTC labels where possible; tracks joined by a gap link share
    the earlier label.
    """
    det = detect(labels)
    parent = np.full(len(det), -1, np.int64)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for label, begin, end, _ in np.asarray(table, np.int64):
        nodes = [det.node_of(t, int(label)) for t in range(int(begin), int(end) + 1)]
        nodes = [n for n in nodes if n is not None]
        if not nodes:
            continue
        first[int(label)], last[int(label)] = nodes[0], nodes[-1]
        for a, b in zip(nodes[:-1], nodes[1:], strict=True):
            parent[b] = a
    for label, _, _, par in np.asarray(table, np.int64):
        if par and int(par) in last and int(label) in first:
            parent[first[int(label)]] = last[int(par)]
    node_track = assign_tracks(det, parent, previous=det.label)
    return TrackingResult(
        detections=det,
        parent=parent,
        node_track=node_track,
        labels=relabel(labels, det, node_track),
        parameters={"source": "CTC"},
    )


def node_table(result: TrackingResult) -> dict[str, np.ndarray]:
    """One row per kept detection: ids, position, track, parent, size (for CSV / GEFF)."""
    det = result.detections
    keep = np.flatnonzero(result.node_track > 0)
    axes = ("z", "y", "x")[-det.ndim :]
    parent = result.parent[keep]
    columns = {"node_id": keep, "t": det.t[keep]}
    for i, ax in enumerate(axes):
        columns[ax] = det.centroid[keep, i]
    columns["track_id"] = result.node_track[keep]
    columns["parent_id"] = parent
    columns["label"] = det.label[keep]
    columns["area"] = det.area[keep]
    if det.mean_intensity is not None:
        columns["mean_intensity"] = det.mean_intensity[keep]
    return columns


def to_networkx(result: TrackingResult):
    """The tracking as a ``networkx.DiGraph``: node attributes from :func:`node_table`."""
    return graph_from_table(node_table(result))


def graph_from_table(columns: dict[str, np.ndarray]):
    """A ``networkx.DiGraph`` from a node table (``node_id`` and ``parent_id`` columns).

    Every other column becomes a node attribute; an edge runs from each parent to its
    child (parents missing from the table are skipped).
    """
    import networkx as nx

    graph = nx.DiGraph()
    names = [c for c in columns if c not in ("node_id", "parent_id")]
    for i, node in enumerate(columns["node_id"].tolist()):
        graph.add_node(node, **{c: columns[c][i].item() for c in names})
    for child, par in zip(columns["node_id"].tolist(), columns["parent_id"].tolist(), strict=True):
        if par >= 0 and par in graph:
            graph.add_edge(par, child)
    return graph


def _check_tracks_data(data) -> np.ndarray:
    data = np.asarray(data, np.float64)
    if data.ndim != 2 or data.shape[1] not in (4, 5):
        raise ValueError(
            "Tracks data must have rows (track_id, t, y, x) or (track_id, t, z, y, x); "
            f"got shape {data.shape}."
        )
    if not np.isfinite(data).all():
        raise ValueError("Tracks data holds NaN or infinite values.")
    return data


def _parent_tracks(graph: dict | None) -> dict[int, int]:
    parents: dict[int, int] = {}
    for child, par in (graph or {}).items():
        par = [par] if np.isscalar(par) else list(par)
        if len(par) > 1:
            raise ValueError(
                f"Track {child} has {len(par)} parent tracks (a merge); tracks files hold "
                "divisions only, one parent per track."
            )
        if par:
            parents[int(child)] = int(par[0])
    return parents


def tracks_layer_table(data, graph: dict | None = None) -> dict[str, np.ndarray]:
    """Node table (as :func:`node_table`) of napari Tracks-layer data and its graph.

    Parameters
    ----------
    data : array-like, shape (N, 4) or (N, 5)
        Rows ``(track_id, t, [z,] y, x)``, as a Tracks layer holds them.
    graph : dict, optional
        ``{daughter track: [parent track]}`` (the layer's ``graph``): the first point
        of a daughter track gets the parent track's last earlier point as parent.

    Returns
    -------
    dict of ndarray
        ``node_id`` (row in track-then-time order), ``t``, ``[z,] y, x``, ``track_id``
        and ``parent_id`` (-1 where a track starts without a parent).

    Raises
    ------
    ValueError
        If the data are not Tracks rows, or a track has two parents (a merge).

    Examples
    --------
    >>> data = [[1, 0, 5, 5], [1, 1, 5, 6], [2, 2, 3, 6], [3, 2, 8, 6]]
    >>> table = tracks_layer_table(data, {2: [1], 3: [1]})
    >>> table["parent_id"].tolist()
    [-1, 0, 1, 1]
    """
    data = _check_tracks_data(data)
    parents = _parent_tracks(graph)
    data = data[np.lexsort((data[:, 1], data[:, 0]))]
    track_id = data[:, 0].astype(np.int64)
    t = np.rint(data[:, 1]).astype(np.int64)
    parent = np.full(len(data), -1, np.int64)
    same = np.flatnonzero(track_id[1:] == track_id[:-1]) + 1
    parent[same] = same - 1
    first = np.flatnonzero(np.r_[True, track_id[1:] != track_id[:-1]]) if len(data) else []
    for row in first:
        par = parents.get(int(track_id[row]))
        if par is None:
            continue
        rows = np.flatnonzero((track_id == par) & (t < t[row]))
        if rows.size:
            parent[row] = rows[-1]
    columns = {"node_id": np.arange(len(data), dtype=np.int64), "t": t}
    for i, ax in enumerate(("z", "y", "x")[-(data.shape[1] - 2):]):
        columns[ax] = data[:, 2 + i]
    columns["track_id"] = track_id
    columns["parent_id"] = parent
    return columns
