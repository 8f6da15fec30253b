"""Lineage-tree layout: where each track goes in a tree drawing (no drawing library).

Time runs along the horizontal axis; every track is a horizontal line in its own lane, a
mother's lane lies between its daughters'. The napari lineage dock
(:mod:`cellsight.gui.lineage_view`) and the main job's lineage figure both draw from
:func:`lineage_layout`.
"""

from dataclasses import dataclass

import numpy as np

from cellsight.core.tracking.tracks import TrackingResult, track_graph


def tree_lanes(track_ids, graph: dict[int, list[int]], starts: dict[int, int]) -> dict[int, float]:
    """Vertical lane of every track: leaves in depth-first order, mothers between daughters.

    Examples
    --------
    >>> tree_lanes([1, 2, 3], {2: [1], 3: [1]}, {1: 0, 2: 5, 3: 5})
    {2: 0.0, 3: 1.0, 1: 0.5}
    """
    children: dict[int, list[int]] = {}
    for child, parents in graph.items():
        children.setdefault(parents[0], []).append(child)
    roots = sorted((t for t in track_ids if t not in graph), key=lambda t: (starts[t], t))
    lanes: dict[int, float] = {}
    next_lane = [0.0]

    def place(tid: int) -> float:
        kids = sorted(children.get(tid, []), key=lambda k: (starts.get(k, 0), k))
        kids = [k for k in kids if k in starts]
        if not kids:
            lanes[tid] = next_lane[0]
            next_lane[0] += 1.0
        else:
            lanes[tid] = float(np.mean([place(k) for k in kids]))
        return lanes[tid]

    for root in roots:
        place(root)
    for tid in track_ids:  # tracks in a cycle-free graph are all placed; keep it safe
        if tid not in lanes:
            lanes[tid] = next_lane[0]
            next_lane[0] += 1.0
    return lanes


@dataclass
class LineageLayout:
    """A tracking result laid out as lineage trees.

    Attributes
    ----------
    spans : dict
        ``track id -> (first frame, last frame, lane)``.
    divisions : list of tuple
        ``(frame, mother lane, daughter lane, daughter's first frame)`` per daughter.
    n_divisions : int
        Mothers with two or more daughter tracks.
    """

    spans: dict[int, tuple[int, int, float]]
    divisions: list[tuple[int, float, float, int]]
    n_divisions: int

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return len(self.spans)


def lineage_layout(result: TrackingResult) -> LineageLayout:
    """Lay out the tracks of ``result`` as lineage trees (see :func:`tree_lanes`).

    Examples
    --------
    >>> from cellsight.core.tracking import track, TrackingConfig
    >>> lab = np.zeros((3, 16, 16), np.uint16); lab[:, 4:8, 4:8] = 1
    >>> layout = lineage_layout(track(lab, config=TrackingConfig(solver="greedy")))
    >>> layout.spans, layout.n_divisions
    ({1: (0, 2, 0.0)}, 0)
    """
    det, node_track = result.detections, result.node_track
    alive = np.flatnonzero(node_track > 0)
    if alive.size == 0:
        return LineageLayout({}, [], 0)
    tids = np.unique(node_track[alive]).tolist()
    first = {t: int(det.t[alive][node_track[alive] == t].min()) for t in tids}
    last = {t: int(det.t[alive][node_track[alive] == t].max()) for t in tids}
    graph = track_graph(result.parent, node_track)
    graph = {int(k): [int(p) for p in v] for k, v in graph.items() if int(k) in first}
    lanes = tree_lanes(tids, graph, first)
    spans = {t: (first[t], last[t], lanes[t]) for t in tids}
    divisions = [(last[mothers[0]], lanes[mothers[0]], lanes[child], first[child])
                 for child, mothers in graph.items() if mothers and mothers[0] in lanes]
    mothers = [m[0] for m in graph.values() if m]
    n_div = sum(1 for m in set(mothers) if mothers.count(m) >= 2)
    return LineageLayout(spans, sorted(divisions), n_div)
