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


def _frame_trees(points: np.ndarray, slices: list[slice]) -> list:
    """One KD-tree of the (scaled) centroids per frame; None for an empty frame."""
    return [cKDTree(points[s]) if s.stop > s.start else None for s in slices]


def _nearest(trees, points, slices, t0, t1, radius, k):
    """Up to ``k`` cells of frame ``t1`` within ``radius`` of each cell of ``t0``.

    Returns ``(distance, target row)`` matrices with one row per cell of ``t0``,
    nearest first (``inf`` where there is no further neighbour); None when either
    frame is empty.
    """
    ra, rb = slices[t0], slices[t1]
    if trees[t1] is None or ra.stop == ra.start:
        return None
    kk = min(k, rb.stop - rb.start)
    radius = np.nextafter(radius, np.inf)  # the query's bound is exclusive
    dist, idx = trees[t1].query(points[ra], k=kk, distance_upper_bound=radius)
    return dist.reshape(len(dist), kk), idx.reshape(len(dist), kk) + rb.start


def _pairs(found, first_row: int):
    """Flat ``(source, target, distance)`` of the neighbours found by :func:`_nearest`."""
    dist, idx = found
    rows, cols = np.nonzero(np.isfinite(dist))
    return rows + first_row, idx[rows, cols], dist[rows, cols]


def derive_parameters(
    det: Detections, points: np.ndarray, config: TrackingConfig, trees=None
) -> dict:
    """Typical displacement and cell size, and the distances and costs derived from them."""
    slices = det.frame_slices()
    trees = _frame_trees(points, slices) if trees is None else trees
    nearest = [
        trees[t + 1].query(points[slices[t]])[0]
        for t in range(det.n_frames - 1)
        if trees[t] is not None and trees[t + 1] is not None
    ]
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


def mask_iou(labels: np.ndarray, det: Detections, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """IoU of the masks of detections ``src[i]`` and ``dst[i]`` (in their own frames).

    Only the intersection of the two bounding boxes is read, so the cost grows with
    the number of pairs whose boxes touch, not with the image size.
    """
    d = det.ndim
    lo = np.maximum(det.bbox[src, :d], det.bbox[dst, :d])
    hi = np.minimum(det.bbox[src, d:], det.bbox[dst, d:])
    inter = np.zeros(len(src))
    touching = np.flatnonzero(np.all(hi > lo, axis=1))
    t_a, t_b = det.t[src[touching]].tolist(), det.t[dst[touching]].tolist()
    l_a, l_b = det.label[src[touching]].tolist(), det.label[dst[touching]].tolist()
    lo, hi = lo[touching].tolist(), hi[touching].tolist()
    for j, i in enumerate(touching.tolist()):
        box = tuple(map(slice, lo[j], hi[j]))
        both = (labels[(t_a[j], *box)] == l_a[j]) & (labels[(t_b[j], *box)] == l_b[j])
        inter[i] = np.count_nonzero(both)
    union = det.area[src] + det.area[dst] - inter
    return inter / np.maximum(union, 1.0)


def link_cost(distance, iou, size_change, dt, max_distance, config: TrackingConfig):
    """Cost of linking two detections (lower = more likely the same cell)."""
    return (
        2.0 * np.asarray(distance) / max_distance
        + config.overlap_weight * (1.0 - np.asarray(iou))
        + config.size_weight * np.asarray(size_change)
        + config.gap_cost * (np.asarray(dt) - 1)
    )


def _search_radius(params: dict, config: TrackingConfig, dt: int) -> float:
    if dt == 1 and config.divisions:  # daughters may sit farther from the mother
        return params["division_radius"]
    return params["max_distance"] * (1.0 + 0.5 * (dt - 1))


def _near_pairs(det, points, trees, params, config, progress, should_stop):
    """Nearby pairs ``(source, target, distance, dt)`` for every frame step up to the gap.

    Also returns the frame-to-frame neighbour matrices (for division candidates).
    """
    slices = det.frame_slices()
    parts, direct = [], {}
    total = det.n_frames - 1
    for t in range(total):
        if should_stop():
            raise Cancelled(partial=None)
        for dt in range(1, min(config.max_gap + 1, total - t) + 1):
            radius = _search_radius(params, config, dt)
            found = _nearest(trees, points, slices, t, t + dt, radius, config.max_neighbors)
            if found is None:
                continue
            if dt == 1:
                direct[t] = found
            pairs = _pairs(found, slices[t].start)
            parts.append((*pairs, np.full(len(pairs[0]), dt)))
        progress(ProgressEvent(t + 1, total, "finding candidate links"))
    if not parts:
        empty = np.zeros(0, np.int64)
        return (empty, empty, np.zeros(0), empty), direct
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4)), direct


def _gap_edges_needed(n, src, dst, dt, cost, appear_cost) -> np.ndarray:
    """Keep every frame-to-frame edge, and gap edges only where a gap is plausible.

    A gap edge is kept when its source has no cheap successor in the next frame or
    its target no cheap predecessor in the previous one (cheap = below the appear
    cost); a cell that is matched well in the adjacent frame needs no gap closing.
    Only the costs of frame-to-frame edges are read.
    """
    direct = dt == 1
    cheap = direct & (cost < appear_cost)
    has_next = np.zeros(n, bool)
    has_prev = np.zeros(n, bool)
    has_next[src[cheap]] = True
    has_prev[dst[cheap]] = True
    return direct | ~has_next[src] | ~has_prev[dst]


def _edges(det, labels, pairs, params, config, should_stop):
    """Candidate links with their features and costs (gap edges only where needed).

    Mask overlaps are measured for frame-to-frame pairs first; gap pairs are
    filtered on those before their own overlaps are measured.
    """
    src, dst, dist, dt = pairs
    size = np.abs(np.log(det.area[dst] / det.area[src]))
    iou = np.zeros(len(src))
    direct = dt == 1
    iou[direct] = mask_iou(labels, det, src[direct], dst[direct])
    cost = link_cost(dist, iou, size, dt, params["max_distance"], config)
    keep = _gap_edges_needed(len(det), src, dst, dt, cost, params["appear_cost"])
    src, dst, dist, dt, size, iou = (x[keep] for x in (src, dst, dist, dt, size, iou))
    gap = dt > 1
    if should_stop():
        raise Cancelled(partial=None)
    iou[gap] = mask_iou(labels, det, src[gap], dst[gap])
    cost = link_cost(dist, iou, size, dt, params["max_distance"], config)
    return src, dst, dist, iou, size, cost


def _division_candidates(det, points, direct, params, config):
    """Triples (parent, a, b): a cell in t and two of its nearest cells in t + 1.

    ``direct`` holds the frame-to-frame neighbour matrices of :func:`_near_pairs`
    (searched within the division radius when divisions are on).
    """
    empty = np.zeros((0, 3), np.int64), np.zeros(0)
    if not config.divisions:
        return empty
    slices = det.frame_slices()
    parts = []
    for t, (dist, idx) in direct.items():
        if dist.shape[1] < 2:
            continue
        x, y = np.triu_indices(dist.shape[1], 1)
        rows, pair = np.nonzero(np.isfinite(dist[:, y]))  # sorted: x is nearer than y
        parent = rows + slices[t].start
        parts.append(np.stack([parent, idx[rows, x[pair]], idx[rows, y[pair]]], axis=1))
    tri = np.concatenate(parts).astype(np.int64) if parts else empty[0]
    if not len(tri):
        return empty
    return tri, division_cost(tri, points, det.area, _diameter(det), params)


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
    trees = _frame_trees(points, detections.frame_slices())
    params = derive_parameters(detections, points, config, trees)
    pairs, direct = _near_pairs(
        detections, points, trees, params, config, progress, should_stop
    )
    src, dst, dist, iou, size, cost = _edges(
        detections, labels, pairs, params, config, should_stop
    )
    triples, div_cost = _division_candidates(detections, points, direct, params, config)
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
