"""Lineage layout (core.tracking.lineage): lanes, spans, division connectors; huge ids."""

import numpy as np

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import track
from cellsight.core.tracking.lineage import lineage_layout, tree_lanes


def _dividing_movie() -> np.ndarray:
    """One cell (frames 0-2) that splits into two (frames 3-5), plus a lone cell."""
    movie = np.zeros((6, 48, 48), np.uint16)
    for t in range(3):
        movie[t, 18:30, 18:30] = 1
    for t in range(3, 6):
        movie[t, 12:20, 18:26] = 1
        movie[t, 28:36, 18:26] = 2
    for t in range(6):
        movie[t, 40:46, 2 + t:8 + t] = 3
    return movie


def test_a_division_is_two_daughter_lanes_around_the_mother():
    result = track(_dividing_movie(), config=TrackingConfig(solver="greedy"))
    layout = lineage_layout(result)
    assert layout.n_tracks == 4 and layout.n_divisions == 1
    mother = next(t for t, (first, last, _) in layout.spans.items() if (first, last) == (0, 2))
    daughters = [t for t, (first, _, _) in layout.spans.items() if first == 3]
    assert len(daughters) == 2
    lanes = sorted(layout.spans[d][2] for d in daughters)
    assert lanes[0] < layout.spans[mother][2] < lanes[1]
    assert [d[0] for d in layout.divisions] == [2, 2]  # connectors leave the mother's end


def test_tree_lanes_gives_every_track_its_own_lane():
    lanes = tree_lanes([1, 2, 3, 4], {2: [1], 3: [1]}, {1: 0, 2: 4, 3: 4, 4: 0})
    assert len(set(lanes.values())) == 4 and lanes[1] == 0.5


def test_huge_label_ids_are_tracked_without_huge_tables():
    movie = np.zeros((3, 24, 24), np.uint32)
    for t in range(3):
        movie[t, 5:9, 5 + t:9 + t] = 4_000_000_000 - t  # ids need not match across frames
    result = track(movie, config=TrackingConfig(solver="greedy"))
    assert result.n_tracks == 1 and lineage_layout(result).spans[1][:2] == (0, 2)
