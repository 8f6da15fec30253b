"""The exact ILP reductions give the optimum of the full motile ILP."""

import numpy as np
import pytest

from cellsight.core.tracking.candidates import CandidateGraph, build_candidates, mask_iou
from cellsight.core.tracking.detections import Detections, detect
from cellsight.core.tracking.reduce import assignment, reduce_problem
from cellsight.core.tracking.solve_ilp import solve_ilp


def random_problem(seed: int, frames: int = 6, cells: int = 7) -> CandidateGraph:
    """Dense, ambiguous candidates: every cell may link to 3 cells of the next frame."""
    rng = np.random.default_rng(seed)
    t = np.repeat(np.arange(frames), cells)
    n = len(t)
    det = Detections(
        t=t,
        label=np.tile(np.arange(1, cells + 1), frames),
        centroid=rng.uniform(0, 50, (n, 2)),
        area=np.full(n, 10.0),
        bbox=np.zeros((n, 4), np.int64),
        mean_intensity=None,
        shape=(frames, 50, 50),
    )
    src, dst, triples = [], [], []
    for f in range(frames - 1):
        for i in range(cells):
            kids = f * cells + cells + rng.choice(cells, 3, replace=False)
            src += [f * cells + i] * 3
            dst += kids.tolist()
            if rng.random() < 0.5:
                triples.append((f * cells + i, kids[0], kids[1]))
    src, dst = np.array(src), np.array(dst)
    tri = np.array(triples, np.int64).reshape(-1, 3)
    return CandidateGraph(
        detections=det,
        source=src,
        target=dst,
        distance=np.zeros(len(src)),
        iou=np.zeros(len(src)),
        size_change=np.zeros(len(src)),
        cost=rng.uniform(0.0, 4.0, len(src)),
        divisions=tri,
        division_cost=rng.uniform(1.0, 5.0, len(tri)),
        appear_cost=1.5,
        max_distance=10.0,
    )


def objective(cand: CandidateGraph, links: np.ndarray) -> float:
    """Cost of a solution relative to "no links", after checking that it is valid."""
    pairs = zip(cand.source.tolist(), cand.target.tolist(), cand.cost, strict=True)
    cost = {(s, d): c for s, d, c in pairs}
    tri = zip(cand.divisions.tolist(), cand.division_cost, strict=True)
    triples = {(p, *sorted((a, b))): c for (p, a, b), c in tri}
    kids: dict = {}
    for s, d in links.tolist():
        assert (s, d) in cost
        kids.setdefault(s, []).append(d)
    assert len(np.unique(links[:, 1])) == len(links)  # one parent at most
    total, a = 0.0, cand.appear_cost
    for s, ds in kids.items():
        if len(ds) == 1:
            total += cost[(s, ds[0])] - 2 * a
        else:
            assert len(ds) == 2 and (s, *sorted(ds)) in triples
            total += triples[(s, *sorted(ds))] - 3 * a
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reduced_solution_is_the_full_optimum(seed):
    cand = random_problem(seed)
    full = solve_ilp(cand, reduce=False)
    stats = {}
    reduced = solve_ilp(cand, stats=stats)
    via_scip = solve_ilp(cand, max_enumerated=0)
    best = objective(cand, full)
    assert objective(cand, reduced) == pytest.approx(best, abs=1e-9)
    assert objective(cand, via_scip) == pytest.approx(best, abs=1e-9)
    assert stats["n_links_kept"] < len(cand)  # the reductions did something
    assert stats["n_enumerated_parts"] + stats["n_ilp_parts"] > 0


def test_parts_with_many_divisions_go_to_the_solver():
    cand = random_problem(3, frames=8, cells=9)
    part = reduce_problem(cand, max_enumerated=0)
    assert part.stats["n_ilp_parts"] > 0 and len(part.edges) and len(part.divisions)
    # the parts left to the solver share no cell side with the links decided already
    assert set(part.links[:, 1].tolist()).isdisjoint(cand.target[part.edges].tolist())
    assert set(part.links[:, 0].tolist()).isdisjoint(cand.source[part.edges].tolist())
    left = set(zip(cand.source[part.edges].tolist(), cand.target[part.edges].tolist(), strict=True))
    for p, a, b in cand.divisions[part.divisions].tolist():
        assert (p, a) in left and (p, b) in left
    everything = reduce_problem(cand, max_enumerated=50)
    assert everything.stats["n_ilp_parts"] == 0 and len(everything.edges) == 0


def test_assignment_is_not_greedy():
    src, dst = np.array([0, 0, 1, 1]), np.array([2, 3, 2, 3])
    gain = np.array([3.0, 2.9, 2.9, 0.1])  # greedy would take 0->2 first, total 3.1
    assert assignment(src, dst, gain).tolist() == [False, True, True, False]
    assert not assignment(src, dst, -gain).any()


@pytest.mark.slow
def test_sim_crop_links_match_the_full_ilp(sim_crop):
    _, labels = sim_crop
    cand = build_candidates(detect(labels), labels)
    full = solve_ilp(cand, reduce=False)
    assert np.array_equal(solve_ilp(cand), full)


def _brute_iou(labels, det, s, d):
    a = labels[det.t[s]] == det.label[s]
    b = labels[det.t[d]] == det.label[d]
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def test_mask_iou_matches_whole_frame_masks(sim_crop):
    _, labels = sim_crop
    det = detect(labels)
    cand = build_candidates(det, labels)
    assert (cand.iou > 0).sum() > 0.4 * len(cand)  # most candidates overlap
    for k in range(0, len(cand), 7):
        s, d = cand.source[k], cand.target[k]
        assert cand.iou[k] == pytest.approx(_brute_iou(labels, det, s, d))
    vol = np.zeros((2, 6, 20, 20), np.uint8)
    vol[0, 1:4, 2:8, 2:8] = 3
    vol[1, 2:5, 4:10, 3:9] = 1
    det3 = detect(vol)
    got = mask_iou(vol, det3, np.array([0]), np.array([1]))
    assert got[0] == pytest.approx(_brute_iou(vol, det3, 0, 1))
