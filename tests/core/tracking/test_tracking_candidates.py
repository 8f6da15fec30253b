import numpy as np

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking.candidates import build_candidates
from cellsight.core.tracking.detections import detect


def test_candidate_features_and_divisions(movie):
    det = detect(movie)
    cand = build_candidates(det, movie)
    pairs = {
        (int(s), int(d)): i for i, (s, d) in enumerate(zip(cand.source, cand.target, strict=True))
    }
    a, b = det.node_of(0, 1), det.node_of(1, 4)
    edge = pairs[(a, b)]
    assert cand.distance[edge] == 1.0
    np.testing.assert_allclose(cand.iou[edge], 90 / 110)
    assert cand.size_change[edge] == 0.0
    static = pairs[(det.node_of(0, 9), det.node_of(1, 9))]
    assert cand.iou[static] == 1.0 and cand.cost[static] < cand.cost[edge]
    mother = det.node_of(1, 4)
    daughters = {det.node_of(2, 1), det.node_of(2, 2)}
    triples = [tuple(t) for t in cand.divisions.tolist()]
    assert (mother, *sorted(daughters)) in [(p, *sorted((x, y))) for p, x, y in triples]
    assert np.all(det.t[cand.source] < det.t[cand.target])


def test_defaults_are_derived_and_overridable(movie):
    det = detect(movie)
    derived = build_candidates(det, movie).parameters
    assert derived["max_distance"] > 2 * derived["displacement_p90"]
    fixed = build_candidates(det, movie, TrackingConfig(max_distance=3.0, divisions=False))
    assert fixed.max_distance == 3.0 and len(fixed.divisions) == 0
    assert np.all(fixed.distance <= 3.0 * 2)  # gap edges may reach 1.5x per skipped frame


def test_gap_edges_bridge_a_missing_frame():
    lab = np.zeros((4, 40, 40), np.uint8)
    for t in (0, 1, 3):
        lab[t, 10:16, 10 + t:16 + t] = 1
    cand = build_candidates(detect(lab), lab, TrackingConfig(max_gap=1))
    det = cand.detections
    edges = set(zip(cand.source.tolist(), cand.target.tolist(), strict=True))
    assert (det.node_of(1, 1), det.node_of(3, 1)) in edges
