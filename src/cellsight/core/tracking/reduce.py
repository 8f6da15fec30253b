"""Exact reductions of the linking ILP, so that only the hard part goes to the solver.

The ILP of :mod:`~cellsight.core.tracking.solve_ilp` pays each link's cost, the appear
cost for every track start and end inside the movie, and a division's cost for a
parent with two children. Three facts shrink it without changing its optimum:

1. A link that costs at least two appear costs is never needed on its own: ending
   the track and starting a new one costs no more. It is kept only as half of a
   division.
2. A division that costs at least one of its links plus an appear cost is never
   needed: keeping that link and starting the other daughter costs no more.
3. Every constraint and cost involves either the outgoing links of one detection or
   the incoming links of one detection. Linking "out" sides to "in" sides splits the
   remaining links into independent parts. A part with one link takes it if it is
   cheaper than two appear costs; a part without candidate divisions is an assignment
   problem (each detection at most one successor and one predecessor), solved exactly
   with :func:`scipy.optimize.linear_sum_assignment`. A part with a few candidate
   divisions is solved by trying every compatible set of them (each an assignment
   problem for the links left free). Only parts with more candidate divisions than
   that are left for the ILP solver.

Ties aside, the combined solution has the same cost as the optimum of the full ILP.
"""

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cellsight.core.tracking.candidates import CandidateGraph

MAX_ENUMERATED = 3  # parts with at most this many candidate divisions skip the ILP solver


@dataclass
class ReducedProblem:
    """Links decided without the ILP solver and what is left for it.

    Attributes
    ----------
    links : ndarray of int, shape (L, 2)
        Links ``(source, target)`` chosen exactly by the reductions.
    edges : ndarray of int
        Indices of the candidate links left for the ILP solver.
    divisions : ndarray of int
        Indices of the candidate divisions left for the ILP solver.
    stats : dict
        Sizes of the reduction steps, for reports.
    """

    links: np.ndarray
    edges: np.ndarray
    divisions: np.ndarray
    stats: dict = field(default_factory=dict)


def edge_index(cand: CandidateGraph, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Index of each link ``(source[i], target[i])`` among the candidates, -1 if absent."""
    n = len(cand.detections)
    wanted = np.asarray(source, np.int64) * n + np.asarray(target, np.int64)
    if not len(cand):
        return np.full(len(wanted), -1, np.int64)
    keys = cand.source * n + cand.target
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], wanted), 0, len(keys) - 1)
    return np.where(keys[order][pos] == wanted, order[pos], -1)


def useful_divisions(cand: CandidateGraph) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the divisions an optimum may need, and the indices of their two links."""
    tri = cand.divisions
    if not len(tri) or not len(cand):
        return np.zeros(len(tri), bool), np.zeros((len(tri), 2), np.int64)
    ea = edge_index(cand, tri[:, 0], tri[:, 1])
    eb = edge_index(cand, tri[:, 0], tri[:, 2])
    both = (ea >= 0) & (eb >= 0)
    cheaper = np.minimum(cand.cost[ea], cand.cost[eb]) + cand.appear_cost
    return both & (cand.division_cost < cheaper), np.stack([ea, eb], axis=1)


def _parts(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Independent part of every link (links joined by a shared source or target)."""
    graph = coo_matrix((np.ones(len(src)), (src, dst + n)), shape=(2 * n, 2 * n))
    _, comp = connected_components(graph, directed=False)
    return comp[src]


def assignment(src: np.ndarray, dst: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Links of one part chosen by a linear assignment (mask over the part's links).

    ``gain`` is what taking a link saves over ending and starting tracks (two appear
    costs minus its cost); only links with a positive gain are ever taken.
    """
    rows, r = np.unique(src, return_inverse=True)
    cols, c = np.unique(dst, return_inverse=True)
    matrix = np.zeros((len(rows), len(cols)))
    matrix[r, c] = -np.maximum(gain, 0.0)
    pick_r, pick_c = linear_sum_assignment(matrix)
    chosen = np.zeros((len(rows), len(cols)), bool)
    chosen[pick_r, pick_c] = True
    return chosen[r, c] & (gain > 0)


def _best_with_divisions(cand, edges, divisions, div_edges, a2) -> np.ndarray:
    """Exact optimum of a part with few candidate divisions (indices of the chosen links).

    Every compatible set of divisions (distinct mothers, distinct daughters) is tried;
    the links left free are solved as an assignment. A division saves three appear
    costs (mother's end, daughters' starts) and costs its division cost.
    """
    best_value, best = np.inf, np.zeros(0, np.int64)
    triples = cand.divisions[divisions]
    for r in range(len(divisions) + 1):
        for combo in combinations(range(len(divisions)), r):
            used = triples[list(combo)].reshape(-1, 3)
            mothers, kids = used[:, 0], used[:, 1:].ravel()
            if len(np.unique(mothers)) < r or len(np.unique(kids)) < 2 * r:
                continue
            free = edges[~np.isin(cand.source[edges], mothers) & ~np.isin(cand.target[edges], kids)]
            gain = a2 - cand.cost[free]
            take = assignment(cand.source[free], cand.target[free], gain)
            value = (cand.division_cost[divisions[list(combo)]] - 1.5 * a2).sum()
            value -= gain[take].sum()
            if value < best_value:
                best_value = value
                best = np.concatenate([free[take], div_edges[divisions[list(combo)]].ravel()])
    return best


def reduce_problem(cand: CandidateGraph, max_enumerated: int = MAX_ENUMERATED) -> ReducedProblem:
    """Decide every link that needs no ILP; return those and the rest for the solver.

    Parts with at most ``max_enumerated`` candidate divisions are solved exactly by
    trying every combination of their divisions; larger ones are left to the solver.
    """
    n, a2 = len(cand.detections), 2.0 * cand.appear_cost
    div_ok, div_edges = useful_divisions(cand)
    in_division = np.zeros(len(cand), bool)
    in_division[div_edges[div_ok].ravel()] = True
    kept = np.flatnonzero((cand.cost < a2) | in_division)
    comp = _parts(n, cand.source[kept], cand.target[kept])
    part_of = np.full(len(cand), -1, np.int64)
    part_of[kept] = comp
    div_part = np.full(len(div_ok), -1, np.int64)
    div_part[div_ok] = part_of[div_edges[div_ok, 0]]
    n_div = np.bincount(div_part[div_ok], minlength=comp.max(initial=-1) + 1)
    single = (np.bincount(comp, minlength=len(n_div))[comp] == 1) & (n_div[comp] == 0)
    chosen = [kept[single & (cand.cost[kept] < a2)]]
    order = np.argsort(comp, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(comp[order])) + 1) if len(order) else []
    div_order = np.argsort(div_part, kind="stable")  # divisions grouped by part
    div_start = np.searchsorted(div_part[div_order], np.arange(len(n_div) + 1))
    counts = {"n_assignment_parts": 0, "n_enumerated_parts": 0}
    for group in groups:
        part = comp[group[0]]
        if single[group[0]] or n_div[part] > max_enumerated:
            continue
        edges = kept[group]
        if n_div[part] == 0:
            gain = a2 - cand.cost[edges]
            chosen.append(edges[assignment(cand.source[edges], cand.target[edges], gain)])
            counts["n_assignment_parts"] += 1
        else:
            divisions = div_order[div_start[part] : div_start[part + 1]]
            chosen.append(_best_with_divisions(cand, edges, divisions, div_edges, a2))
            counts["n_enumerated_parts"] += 1
    picked = np.concatenate(chosen)
    hard = n_div > max_enumerated
    div_hard = np.zeros(len(div_ok), bool)
    div_hard[div_ok] = hard[div_part[div_ok]]
    stats = {
        "n_links_kept": int(len(kept)),
        "n_divisions_kept": int(div_ok.sum()),
        **counts,
        "n_ilp_parts": int(hard.sum()),
        "n_ilp_links": int(hard[comp].sum()),
    }
    return ReducedProblem(
        links=np.stack([cand.source[picked], cand.target[picked]], axis=1).astype(np.int64),
        edges=kept[hard[comp]],
        divisions=np.flatnonzero(div_hard),
        stats=stats,
    )
