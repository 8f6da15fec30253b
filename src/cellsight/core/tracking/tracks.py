"""From selected links to tracks: track ids, relabelled masks, napari Tracks data.

A *track* is a chain of detections without divisions (it may skip frames where a gap
was closed). A division ends the parent track and starts one track per daughter;
``graph`` maps each daughter track to ``[parent track]`` as napari's Tracks layer wants.
"""

from dataclasses import dataclass, field

import numpy as np

from cellsight.core.tracking.detections import Detections


@dataclass
class TrackingResult:
    """The state of a tracking: which detection follows which, and the track ids.

    Attributes
    ----------
    detections : Detections
    parent : ndarray of int, shape (N,)
        Row of each detection's predecessor, -1 where a track starts.
    node_track : ndarray of int, shape (N,)
        Track id of each detection (>= 1); 0 marks a deleted detection.
    labels : ndarray
        The input labels relabelled by track id (0 = background or deleted).
    parameters : dict
        Solver, derived distances and costs, timings.
    """

    detections: Detections
    parent: np.ndarray
    node_track: np.ndarray
    labels: np.ndarray
    parameters: dict = field(default_factory=dict)

    @property
    def alive(self) -> np.ndarray:
        """Mask of detections that were not deleted."""
        return self.node_track > 0

    @property
    def links(self) -> np.ndarray:
        """Links ``(source, target)`` as detection rows, shape (L, 2)."""
        child = np.flatnonzero(self.parent >= 0)
        return np.stack([self.parent[child], child], axis=1).astype(np.int64)

    def children(self) -> dict[int, list[int]]:
        """Successors of every detection that has any."""
        out: dict[int, list[int]] = {}
        for c in np.flatnonzero(self.parent >= 0):
            out.setdefault(int(self.parent[c]), []).append(int(c))
        return out

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(np.unique(self.node_track[self.node_track > 0]))


def parent_array(n: int, links: np.ndarray) -> np.ndarray:
    """Per-detection predecessor row (-1 = none) from ``(source, target)`` links."""
    parent = np.full(n, -1, np.int64)
    links = np.asarray(links, np.int64).reshape(-1, 2)
    if len(np.unique(links[:, 1])) != len(links):
        raise ValueError("A detection has more than one parent in the links.")
    parent[links[:, 1]] = links[:, 0]
    return parent


def _chains(det: Detections, parent: np.ndarray, alive: np.ndarray) -> list[list[int]]:
    """Tracks as lists of detection rows in time order, sorted by start."""
    n_children = np.bincount(parent[parent >= 0], minlength=len(parent))
    only_child = {int(parent[c]): int(c) for c in np.flatnonzero(parent >= 0)}
    starts = [
        i
        for i in np.lexsort((np.arange(len(parent)), det.t))
        if alive[i] and (parent[i] < 0 or n_children[parent[i]] != 1)
    ]
    chains = []
    for s in starts:
        chain = [int(s)]
        while n_children[chain[-1]] == 1:
            chain.append(only_child[chain[-1]])
        chains.append(chain)
    return chains


def assign_tracks(
    det: Detections,
    parent: np.ndarray,
    alive: np.ndarray | None = None,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """Track id of every detection (0 where not alive).

    Without ``previous``, ids are 1, 2, ... in order of track start. With it, a track
    keeps the previous id of its first detection when no earlier track claimed it, so
    an edit changes as few ids as possible; other tracks get new, unused ids.
    """
    alive = np.ones(len(parent), bool) if alive is None else alive
    node_track = np.zeros(len(parent), np.int64)
    used: set[int] = set()
    next_id = 1 if previous is None else int(previous.max(initial=0)) + 1
    for chain in _chains(det, parent, alive):
        wanted = 0 if previous is None else int(previous[chain[0]])
        if wanted <= 0 or wanted in used:
            wanted, next_id = next_id, next_id + 1
        used.add(wanted)
        node_track[chain] = wanted
    return node_track


def track_graph(parent: np.ndarray, node_track: np.ndarray) -> dict[int, list[int]]:
    """``{daughter track: [parent track]}`` for every link that crosses tracks."""
    graph: dict[int, list[int]] = {}
    for c in np.flatnonzero(parent >= 0):
        pt, ct = int(node_track[parent[c]]), int(node_track[c])
        if pt and ct and pt != ct:
            graph[ct] = [pt]
    return graph


def track_features(node_track: np.ndarray, graph: dict[int, list[int]]) -> dict[int, dict]:
    """Per track: ``generation`` (divisions since its root), ``root`` and ``length``."""
    ids, counts = np.unique(node_track[node_track > 0], return_counts=True)
    out: dict[int, dict] = {}
    for tid, count in zip(ids.tolist(), counts.tolist(), strict=True):
        generation, root = 0, tid
        while root in graph:
            root = graph[root][0]
            generation += 1
        out[tid] = {"generation": generation, "root": root, "length": count}
    return out


def napari_tracks(
    det: Detections, parent: np.ndarray, node_track: np.ndarray
) -> tuple[np.ndarray, dict, dict]:
    """Data, graph and per-point features for a napari Tracks layer.

    Returns
    -------
    data : ndarray, shape (M, 2 + D)
        Rows ``(track_id, t, [z,] y, x)`` sorted by track and time.
    graph : dict
        ``{daughter track: [parent track]}``.
    features : dict of ndarray
        ``generation``, ``lineage_root``, ``track_length`` per row.
    """
    keep = np.flatnonzero(node_track > 0)
    order = keep[np.lexsort((det.t[keep], node_track[keep]))]
    data = np.column_stack(
        [node_track[order], det.t[order], det.centroid[order]]
    ).astype(np.float64)
    graph = track_graph(parent, node_track)
    feats = track_features(node_track, graph)
    tids = node_track[order]
    features = {
        "generation": np.array([feats[t]["generation"] for t in tids], np.int64),
        "lineage_root": np.array([feats[t]["root"] for t in tids], np.int64),
        "track_length": np.array([feats[t]["length"] for t in tids], np.int64),
    }
    return data, graph, features


def relabel(
    labels: np.ndarray, det: Detections, node_track: np.ndarray, out: np.ndarray | None = None,
    nodes=None,
) -> np.ndarray:
    """Write each detection's track id into its pixels.

    With ``out`` and ``nodes``, only those detections are rewritten in ``out`` (an
    edit); otherwise a new array is returned.
    """
    if out is None:
        dtype = np.uint32 if node_track.max(initial=0) > np.iinfo(np.uint16).max else np.uint16
        out = np.zeros(labels.shape, dtype)
        for t, rows in enumerate(det.frame_slices()):
            if rows.stop > rows.start:
                lut = np.zeros(int(det.label[rows].max()) + 1, out.dtype)
                lut[det.label[rows]] = node_track[rows]
                # every id of the frame is a detection, so "clip" never clips (and is fast)
                np.take(lut, np.asarray(labels[t]), out=out[t], mode="clip")
        return out
    if node_track.max(initial=0) > np.iinfo(out.dtype).max:
        raise ValueError("Track ids no longer fit the labels' integer type.")
    d = det.ndim
    for n in nodes:
        box = (int(det.t[n]),) + tuple(
            slice(int(det.bbox[n, i]), int(det.bbox[n, d + i])) for i in range(d)
        )
        mask = labels[box] == det.label[n]
        out[box][mask] = node_track[n]
    return out


def build_result(
    det: Detections, labels: np.ndarray, links: np.ndarray, parameters: dict | None = None
) -> TrackingResult:
    """Track ids and relabelled masks from the selected links."""
    parent = parent_array(len(det), links)
    node_track = assign_tracks(det, parent)
    return TrackingResult(
        detections=det,
        parent=parent,
        node_track=node_track,
        labels=relabel(labels, det, node_track),
        parameters=dict(parameters or {}),
    )
