"""Fast greedy linking for large data: cheapest links first, then divisions.

Links are accepted in order of increasing cost while both ends are free and the
link is cheaper than ending one track and starting another. Then every daughter that
still starts a track is attached to a parent as a division where that lowers the
total cost. Runs in O(E log E) for E candidate links.
"""

import numpy as np

from cellsight.core.progress import Cancelled, ProgressEvent, never_stop, no_progress
from cellsight.core.tracking.candidates import CandidateGraph


def _greedy_links(cand: CandidateGraph, should_stop) -> tuple[np.ndarray, np.ndarray]:
    n = len(cand.detections)
    parent = np.full(n, -1, np.int64)
    child = np.full(n, -1, np.int64)
    order = np.argsort(cand.cost, kind="stable")
    limit = 2.0 * cand.appear_cost
    for count, e in enumerate(order):
        if cand.cost[e] >= limit:
            break
        if count % 20000 == 0 and should_stop():
            raise Cancelled(partial=None)
        s, d = cand.source[e], cand.target[e]
        if child[s] < 0 and parent[d] < 0:
            child[s] = d
            parent[d] = s
    return parent, child


def _division_gain(cand, triple, cost, parent, child, edge_cost) -> float:
    p, a, b = (int(x) for x in triple)
    if parent[a] >= 0 and parent[b] >= 0:
        return -np.inf
    current = child[p]
    if current < 0:
        if parent[a] >= 0 or parent[b] >= 0:
            return -np.inf
        return 3.0 * cand.appear_cost - cost  # parent ended, both daughters started
    if current not in (a, b):
        return -np.inf
    other = b if current == a else a
    if parent[other] >= 0:
        return -np.inf
    return edge_cost.get((p, int(current)), np.inf) + cand.appear_cost - cost


def _greedy_divisions(cand: CandidateGraph, parent, child) -> None:
    edge_cost = {
        (int(s), int(d)): float(c)
        for s, d, c in zip(cand.source, cand.target, cand.cost, strict=True)
    }
    gains = [
        _division_gain(cand, tri, cost, parent, child, edge_cost)
        for tri, cost in zip(cand.divisions, cand.division_cost, strict=True)
    ]
    divided = set()
    for k in np.argsort(gains)[::-1]:
        if not gains[k] > 0:
            break
        p, a, b = (int(x) for x in cand.divisions[k])
        if p in divided:
            continue
        tri, cost = cand.divisions[k], cand.division_cost[k]
        gain = _division_gain(cand, tri, cost, parent, child, edge_cost)
        if gain <= 0:
            continue
        parent[a] = parent[b] = p
        child[p] = a
        divided.add(p)


def solve_greedy(
    candidates: CandidateGraph, progress=no_progress, should_stop=never_stop
) -> np.ndarray:
    """Select links greedily (cheapest first), then add divisions.

    Parameters
    ----------
    candidates : CandidateGraph
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    ndarray of int, shape (L, 2)
        Selected links ``(source, target)`` as detection rows.
    """
    progress(ProgressEvent(0, 2, "greedy linking"))
    parent, child = _greedy_links(candidates, should_stop)
    progress(ProgressEvent(1, 2, "greedy divisions"))
    if len(candidates.divisions):
        _greedy_divisions(candidates, parent, child)
    links = [(int(p), int(d)) for d, p in enumerate(parent) if p >= 0]
    progress(ProgressEvent(2, 2, "greedy linking done"))
    return np.asarray(links, np.int64).reshape(-1, 2)
