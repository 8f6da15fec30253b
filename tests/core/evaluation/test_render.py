"""Labelled overview figures and the lineage figure (core.evaluation.render)."""

import imageio.v3 as iio
import numpy as np
import pytest

from cellsight.core.evaluation.render import draw_lineage, labelled_overview, lineage_figure
from cellsight.core.tracking.lineage import LineageLayout

LAYOUT = LineageLayout(spans={1: (0, 2, 0.5), 2: (3, 5, 0.0), 3: (3, 3, 1.0)},
                       divisions=[(2, 0.5, 0.0, 3), (2, 0.5, 1.0, 3)], n_divisions=1)


@pytest.mark.slow
def test_labelled_overview_draws_images_and_callables(tmp_path):
    image = np.random.default_rng(0).random((32, 32))
    labels = np.zeros((32, 32), np.uint8)
    labels[8:16, 8:16] = 1
    panels = [("1. an image\nfigure 1.0", image),
              ("2. a lineage", lambda ax, title: draw_lineage(ax, LAYOUT, title))]
    labelled_overview(panels, tmp_path / "o.png", "headline", columns=2)
    picture = iio.imread(tmp_path / "o.png")
    assert picture.ndim == 3 and picture.shape[1] > picture.shape[0] and picture.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temporary left


@pytest.mark.slow
def test_lineage_figure_is_written(tmp_path):
    lineage_figure(LAYOUT, tmp_path / "l.png", "3 tracks, 1 division")
    assert iio.imread(tmp_path / "l.png").std() > 5
