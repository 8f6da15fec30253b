import time

import numpy as np
import pytest
from test_instance_targets import disks

from cellsight.config.instances import (
    BOUNDARY,
    INTERIOR,
    InstancePostConfig,
    InstanceTargetConfig,
)
from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_targets import (
    instance_targets,
)
from cellsight.core.segmentation.watershed import (
    maps_from_probabilities,
    watershed_instances,
    watershed_series,
)


def test_maps_from_probabilities():
    p = np.zeros((3, 4, 4), np.float32)
    p[0], p[1], p[2] = 0.2, 0.5, 0.3
    fg, bd = maps_from_probabilities(p)
    assert np.allclose(fg, 0.8) and np.allclose(bd, 0.3)
    with pytest.raises(ValueError, match="3, \\*spatial"):
        maps_from_probabilities(p[:2])


def _maps(lab):
    t = instance_targets(lab, InstanceTargetConfig(boundary_width=2))
    fg = (t >= INTERIOR).astype(np.float32)
    bd = (t == BOUNDARY).astype(np.float32)
    return fg, bd


def test_watershed_separates_touching_objects_2d():
    lab = disks(centres=((30, 20), (30, 36)), radius=9)  # touching disks
    fg, bd = _maps(lab)
    out = watershed_instances(fg, bd, InstancePostConfig(min_size=5))
    assert out.dtype == np.int32 and out.max() == 2
    assert match_instances(lab, out, 0.5).ap == 1.0
    # with the boundary ignored the two touching disks merge
    merged = watershed_instances(fg, np.zeros_like(bd), InstancePostConfig(min_size=5))
    assert merged.max() == 1


def test_watershed_thresholds_and_min_size_change_result():
    lab = disks()
    fg, bd = _maps(lab)
    weak = fg.copy()
    weak[lab == 3] *= 0.45  # one faint object
    assert watershed_instances(weak, bd, InstancePostConfig(mask_threshold=0.5)).max() == 2
    assert watershed_instances(weak, bd, InstancePostConfig(mask_threshold=0.3,
                                                            seed_threshold=0.3)).max() == 3
    assert watershed_instances(fg, bd, InstancePostConfig(min_size=10_000)).max() == 0
    out = watershed_instances(fg, bd)
    assert np.array_equal(np.unique(out), np.arange(out.max() + 1))  # consecutive ids


def test_watershed_does_not_modify_inputs():
    fg, bd = _maps(disks())
    before = fg.copy(), bd.copy()
    watershed_instances(fg, bd, InstancePostConfig(smoothing=1.0))
    assert np.array_equal(fg, before[0]) and np.array_equal(bd, before[1])


def test_watershed_anisotropic_3d():
    lab = np.zeros((6, 40, 40), np.int32)
    lab[1:5] = disks((40, 40), ((20, 11), (20, 29)), 9)[None]
    fg, bd = _maps(lab)
    out = watershed_instances(fg, bd, InstancePostConfig(anisotropy=4.0, smoothing=0.5))
    assert out.shape == lab.shape and out.max() == 2
    assert match_instances(lab, out, 0.5).ap == 1.0


def test_watershed_series_frame_by_frame_and_cancel():
    lab = disks()
    fg, bd = _maps(lab)
    fgs, bds = np.stack([fg, fg[:, ::-1], fg]), np.stack([bd, bd[:, ::-1], bd])
    out = watershed_series(fgs, bds)
    assert out.shape == fgs.shape and [int(f.max()) for f in out] == [3, 3, 3]
    calls = []
    with pytest.raises(Cancelled) as info:
        watershed_series(fgs, bds, should_stop=lambda: len(calls) >= 1,
                         progress=lambda e: calls.append(e))
    assert info.value.partial.shape[0] == 1
    with pytest.raises(ValueError, match="time series"):
        watershed_instances(fgs[None], bds[None])
    with pytest.raises(ValueError, match="differ in shape"):
        watershed_instances(fg, bd[:10])


@pytest.mark.slow
def test_watershed_fast_enough_on_1024_squared():
    rng = np.random.default_rng(0)
    grid = range(40, 1000, 60)
    centres = [(y + rng.integers(-4, 5), x) for y in grid for x in grid]
    lab = disks((1024, 1024), centres, 27)
    fg, bd = _maps(lab)
    best = min(_timed(watershed_instances, fg, bd) for _ in range(3))
    assert best < 1.0  # measured ~0.15 s; the target is < 0.5 s (bound loose for shared CPUs)


def _timed(func, *args):
    t = time.perf_counter()
    func(*args)
    return time.perf_counter() - t


def _two_touching(shape=(48, 72), r=12, gap=20):
    """Foreground of two overlapping discs; the boundary map misses their contact."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cy, cx = shape[0] // 2, shape[1] // 2
    a = (yy - cy) ** 2 + (xx - (cx - gap // 2)) ** 2 < r**2
    b = (yy - cy) ** 2 + (xx - (cx + gap // 2)) ** 2 < r**2
    fg = (a | b).astype(np.float32)
    return fg, np.zeros_like(fg), a, b


def test_split_by_shape_separates_what_the_boundary_missed():
    fg, bd, a, b = _two_touching()
    plain = watershed_instances(fg, bd, InstancePostConfig(min_size=1))
    split = watershed_instances(fg, bd, InstancePostConfig(min_size=1, split_by_shape=True))
    assert plain.max() == 1
    assert split.max() == 2
    truth = np.zeros(fg.shape, np.int32)
    truth[a], truth[b & ~a] = 1, 2
    assert match_instances(truth, split).tp == 2


def test_split_by_shape_keeps_convex_objects_whole():
    yy, xx = np.mgrid[:64, :96]
    ellipse = ((yy - 32) / 14.0) ** 2 + ((xx - 48) / 30.0) ** 2 < 1  # 2:1, no neck
    fg = ellipse.astype(np.float32)
    labels = watershed_instances(fg, np.zeros_like(fg),
                                 InstancePostConfig(min_size=1, split_by_shape=True))
    assert labels.max() == 1


def test_split_depth_controls_splitting():
    fg, bd, _, _ = _two_touching(gap=14)  # a shallow neck
    deep = watershed_instances(fg, bd, InstancePostConfig(min_size=1, split_by_shape=True,
                                                          split_depth=0.9))
    shallow = watershed_instances(fg, bd, InstancePostConfig(min_size=1, split_by_shape=True,
                                                             split_depth=0.02))
    assert deep.max() == 1 and shallow.max() == 2


def test_split_by_shape_is_local_to_each_region():
    """A region's split does not depend on the rest of the image (blockwise stays seam-free)."""
    fg, bd, _, _ = _two_touching()
    wide = np.zeros((48, 200), np.float32)
    wide[:, :72] = fg
    wide[4:44, 120:196] = 1.0  # a large object elsewhere changes nothing for the pair
    config = InstancePostConfig(min_size=1, split_by_shape=True)
    alone = watershed_instances(fg, bd, config)
    together = watershed_instances(wide, np.zeros_like(wide), config)
    assert together.max() == 3
    assert match_instances(alone, together[:, :72]).tp == 2


def test_split_by_shape_3d_anisotropic():
    zz, yy, xx = np.mgrid[:12, :40, :60]
    a = ((zz - 6) * 3) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 < 144
    b = ((zz - 6) * 3) ** 2 + (yy - 20) ** 2 + (xx - 40) ** 2 < 144
    fg = (a | b).astype(np.float32)
    config = InstancePostConfig(min_size=1, split_by_shape=True, anisotropy=3.0)
    assert watershed_instances(fg, np.zeros_like(fg), config).max() == 2
