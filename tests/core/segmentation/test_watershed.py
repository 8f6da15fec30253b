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
