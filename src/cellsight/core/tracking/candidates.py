"""Candidate graph: which detections may be linked, and what each link would cost.

Edges join a cell in frame ``t`` to its nearest cells within a maximum distance in
frames ``t + 1 ... t + 1 + max_gap`` (gap closing). Each edge carries the centroid
distance, the mask overlap (IoU) and the size change; its cost combines them. Division
candidates are triples (parent in ``t``, two daughters in ``t + 1``) with a cost from
their geometry. Parameters left at 0 in the config are derived from the data.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from cellsight.config.tracking import TrackingConfig
from cellsight.core.progress import Cancelled, ProgressEvent, never_stop, no_progress
from cellsight.core.tracking.detections import Detections

DIVISION_BASE = 1.0  # cost of a division with perfect geometry, before config.division_cost


@dataclass
class CandidateGraph:
    """Possible links and divisions with their costs (row-aligned arrays).

    Attributes
    ----------
    detections : Detections
    source, target : ndarray of int, shape (E,)
        Detection rows of each candidate link (``t[source] < t[target]``).
    distance, iou, size_change, cost : ndarray of float, shape (E,)
        Centroid distance (scaled pixels), mask IoU, ``|log(area ratio)|`` and cost.
    divisions : ndarray of int, shape (K, 3)
        Candidate divisions ``(parent, daughter_a, daughter_b)``.
    division_cost : ndarray of float, shape (K,)
    appear_cost : float
        Cost of starting (and of ending) a track inside the movie.
    max_distance : float
        Linking distance used (derived from the data when the config said 0).
    parameters : dict
        The data-derived numbers, for reports.
    """

    detections: Detections
    source: np.ndarray
    target: np.ndarray
    distance: np.ndarray
    iou: np.ndarray
    size_change: np.ndarray
    cost: np.ndarray
    divisions: np.ndarray
    division_cost: np.ndarray
    appear_cost: float
    max_distance: float
    parameters: dict = field(default_factory=dict)

    def __len__(self) -> int:
        """Number of candidate links."""
        return len(self.source)


def _scaled(det: Detections, scale) -> np.ndarray:
    if scale is None:
        return det.centroid
    scale = np.asarray(scale, np.float64)
    if scale.shape != (det.ndim,) or np.any(scale <= 0):
        raise ValueError(f"scale needs {det.ndim} positive values (one per spatial axis).")
    return det.centroid * (scale / scale.min())


def _diameter(det: Detections) -> np.ndarray:
    if det.ndim == 3:
        return np.cbrt(6.0 * det.area / np.pi)
    return 2.0 * np.sqrt(det.area / np.pi)


def derive_parameters(det: Detections, points: np.ndarray, config: TrackingConfig) -> dict:
    """Typical displacement and cell size, and the distances and costs derived from them."""
    slices = det.frame_slices()
    nearest = []
    for a, b in zip(slices[:-1], slices[1:], strict=True):
        if a.stop > a.start and b.stop > b.start:
            nearest.append(cKDTree(points[b]).query(points[a])[0])
    nn = np.concatenate(nearest) if nearest else np.zeros(1)
    diameter = float(np.median(_diameter(det)))
    p90 = float(np.percentile(nn, 90))
    max_distance = config.max_distance or max(4.0 * p90, 0.5 * diameter, 2.0)
    return {
        "displacement_p90": round(p90, 3),
        "median_diameter": round(diameter, 3),
        "max_distance": float(max_distance),
        "division_radius": float(max(max_distance, diameter)),
        "appear_cost": config.appear_cost or 1.5,
        "division_cost": config.division_cost or DIVISION_BASE,
    }


class _Overlaps:
    """Pixel overlap of objects in two frames, from each frame's foreground pixels."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        self._fg: dict[int, np.ndarray] = {}

    def foreground(self, t: int) -> np.ndarray:
        if t not in self._fg:
            self._fg = {k: v for k, v in self._fg.items() if k >= t - 1}
            self._fg[t] = np.flatnonzero(self.labels[t])
        return self._fg[t]

    def between(self, t0: int, t1: int, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """Overlap in pixels of object ``la[i]`` in ``t0`` and ``lb[i]`` in ``t1``."""
        idx = self.foreground(t0)
        b = self.labels[t1].ravel()[idx]
        keep = b != 0
        base = int(lb.max(initial=0)) + 1
        if not keep.any() or base == 1:
            return np.zeros(len(la))
        a = self.labels[t0].ravel()[idx[keep]].astype(np.int64)
        keys = a * base + b[keep].astype(np.int64)
        wanted = la.astype(np.int64) * base + lb.astype(np.int64)
        if keys.max() < 1 << 24:
            counts = np.bincount(keys, minlength=int(wanted.max()) + 1)
            return counts[wanted].astype(np.float64)
        uniq, counts = np.unique(keys, return_counts=True)
        pos = np.clip(np.searchsorted(uniq, wanted), 0, len(uniq) - 1)
        return np.where(uniq[pos] == wanted, counts[pos], 0).astype(np.float64)


def _frame_pair_edges(det, points, overlaps, rows_a, rows_b, radius, k):
    if rows_a.stop == rows_a.start or rows_b.stop == rows_b.start:
        return None
    tree = cKDTree(points[rows_b])
    kk = min(k, rows_b.stop - rows_b.start)
    dist, idx = tree.query(points[rows_a], k=kk, distance_upper_bound=radius)
    dist, idx = dist.reshape(len(dist), -1), idx.reshape(len(idx), -1)
    ok = np.isfinite(dist)
    src = (np.arange(rows_a.start, rows_a.stop)[:, None] + 0 * idx)[ok]
    dst = idx[ok] + rows_b.start
    inter = overlaps.between(
        int(det.t[rows_a.start]), int(det.t[rows_b.start]), det.label[src], det.label[dst]
    )
    union = det.area[src] + det.area[dst] - inter
    return src, dst, dist[ok], inter / np.maximum(union, 1.0)


def link_cost(distance, iou, size_change, dt, max_distance, config: TrackingConfig):
    """Cost of linking two detections (lower = more likely the same cell)."""
    return (
        2.0 * np.asarray(distance) / max_distance
        + config.overlap_weight * (1.0 - np.asarray(iou))
        + config.size_weight * np.asarray(size_change)
        + config.gap_cost * (np.asarray(dt) - 1)
    )


def _edges(det, points, labels, params, config, progress, should_stop):
    slices = det.frame_slices()
    overlaps = _Overlaps(labels)
    parts = []
    total = det.n_frames - 1
    for t in range(total):
        if should_stop():
            raise Cancelled(partial=None)
        for dt in range(1, config.max_gap + 2):
            if t + dt >= det.n_frames:
                break
            radius = params["max_distance"] * (1.0 + 0.5 * (dt - 1))
            if dt == 1 and config.divisions:  # daughters may sit farther from the mother
                radius = params["division_radius"]
            found = _frame_pair_edges(
                det, points, overlaps, slices[t], slices[t + dt], radius, config.max_neighbors
            )
            if found is not None:
                parts.append((*found, np.full(len(found[0]), dt)))
        progress(ProgressEvent(t + 1, total, "finding candidate links"))
    if not parts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0), np.zeros(0)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))


def _gap_edges_needed(n, src, dst, dt, cost, appear_cost) -> np.ndarray:
    """Keep every frame-to-frame edge, and gap edges only where a gap is plausible.

    A gap edge is kept when its source has no cheap successor in the next frame or
    its target no cheap predecessor in the previous one (cheap = below the appear
    cost); a cell that is matched well in the adjacent frame needs no gap closing.
    """
    direct = dt == 1
    cheap = direct & (cost < appear_cost)
    has_next = np.zeros(n, bool)
    has_prev = np.zeros(n, bool)
    has_next[src[cheap]] = True
    has_prev[dst[cheap]] = True
    return direct | ~has_next[src] | ~has_prev[dst]


def _division_candidates(det, points, params, config):
    """Triples (parent, a, b) of one cell in t and two cells in t + 1 around it."""
    if not config.divisions:
        return np.zeros((0, 3), np.int64), np.zeros(0)
    slices = det.frame_slices()
    diam = _diameter(det)
    triples = []
    for t in range(det.n_frames - 1):
        ra, rb = slices[t], slices[t + 1]
        if rb.stop - rb.start < 2 or ra.stop == ra.start:
            continue
        tree = cKDTree(points[rb])
        near = tree.query_ball_point(points[ra], params["division_radius"])
        for i, kids in enumerate(near):
            here = points[ra.start + i]
            kids = sorted(kids, key=lambda j: np.linalg.norm(points[rb.start + j] - here))
            kids = kids[: config.max_neighbors]
            for x in range(len(kids)):
                for y in range(x + 1, len(kids)):
                    triples.append((ra.start + i, rb.start + kids[x], rb.start + kids[y]))
    if not triples:
        return np.zeros((0, 3), np.int64), np.zeros(0)
    tri = np.asarray(triples, np.int64)
    return tri, division_cost(tri, points, det.area, diam, params)


def division_cost(triples, points, area, diameter, params) -> np.ndarray:
    """Cost of each candidate division from the daughters' placement and sizes.

    Daughters sit on opposite sides of the parent (their midpoint near the parent's
    centroid), have similar sizes, and together are about as large as the parent.
    """
    p, a, b = triples[:, 0], triples[:, 1], triples[:, 2]
    mid = np.linalg.norm(points[p] - 0.5 * (points[a] + points[b]), axis=1) / diameter[p]
    similar = np.abs(np.log(area[a] / area[b]))
    total = np.abs(np.log((area[a] + area[b]) / area[p]))
    return params["division_cost"] + 3.0 * mid + 0.75 * similar + 0.5 * total


def build_candidates(
    detections: Detections,
    labels: np.ndarray,
    config: TrackingConfig | None = None,
    scale=None,
    progress=no_progress,
    should_stop=never_stop,
) -> CandidateGraph:
    """Find candidate links and divisions between detections, with their costs.

    Parameters
    ----------
    detections : Detections
        From :func:`~cellsight.core.tracking.detections.detect` on ``labels``.
    labels : numpy.ndarray
        The labels time series the detections came from (for mask overlaps).
    config : TrackingConfig, optional
    scale : sequence of float, optional
        Pixel size per spatial axis; distances are measured in units of the finest.
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    CandidateGraph
    """
    config = config or TrackingConfig()
    if tuple(np.shape(labels)) != detections.shape:
        raise ValueError(
            f"labels shape {np.shape(labels)} differs from the detections' {detections.shape}."
        )
    points = _scaled(detections, scale)
    params = derive_parameters(detections, points, config)
    src, dst, dist, iou, dt = _edges(
        detections, points, labels, params, config, progress, should_stop
    )
    size = np.abs(np.log(detections.area[dst] / detections.area[src])) if len(src) else dist
    cost = link_cost(dist, iou, size, dt, params["max_distance"], config)
    keep = _gap_edges_needed(len(detections), src, dst, dt, cost, params["appear_cost"])
    src, dst, dist, iou, size, cost = (x[keep] for x in (src, dst, dist, iou, size, cost))
    triples, div_cost = _division_candidates(detections, points, params, config)
    return CandidateGraph(
        detections=detections,
        source=src.astype(np.int64),
        target=dst.astype(np.int64),
        distance=dist,
        iou=iou,
        size_change=size,
        cost=cost,
        divisions=triples,
        division_cost=div_cost,
        appear_cost=float(params["appear_cost"]),
        max_distance=float(params["max_distance"]),
        parameters=params,
    )
