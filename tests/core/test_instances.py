import time

import numpy as np
import pytest

from cellsight.config.instances import (
    BACKGROUND,
    BOUNDARY,
    IGNORE,
    INTERIOR,
    InstancePostConfig,
    InstanceTargetConfig,
)
from cellsight.core.instances import (
    annotated_region,
    boundary_map,
    foreground_targets,
    instance_targets,
    maps_from_probabilities,
    median_diameter,
    watershed_instances,
    watershed_series,
)
from cellsight.core.metrics import match_instances
from cellsight.core.progress import Cancelled


def disks(shape=(64, 64), centres=((20, 20), (20, 40), (45, 30)), radius=9):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, np.int32)
    for i, (y, x) in enumerate(centres, 1):
        lab[((yy - y) ** 2 + (xx - x) ** 2 < radius**2) & (lab == 0)] = i
    return lab


def test_boundary_band_width_and_touching_objects():
    lab = np.zeros((16, 16), int)
    lab[2:12, 2:8] = 1
    lab[2:12, 8:14] = 2  # touching along column 7|8
    b1 = boundary_map(lab, 1)
    assert b1[6, 7] and b1[6, 8]  # the shared edge is boundary on both sides
    assert not b1[6, 6] and not b1[6, 9]
    b2 = boundary_map(lab, 2)
    assert b2[6, 6] and b2[6, 9] and not b2[6, 5] and not b2[6, 10]
    assert not (b2 & (lab == 0)).any()


def test_boundary_3d_anisotropy_thins_band_along_z():
    lab = np.zeros((9, 20, 20), int)
    lab[1:8, 3:17, 3:17] = 1
    iso = boundary_map(lab, 3, anisotropy=1.0)
    aniso = boundary_map(lab, 3, anisotropy=3.0)
    # with Z spacing 3x, only the outermost slice is within 3 (physical) of the outline
    assert iso[2, 10, 10] and not aniso[2, 10, 10]
    assert aniso[1, 10, 10] and aniso[4, 10, 4]


def test_instance_targets_classes_and_ignore():
    lab = disks()
    annotated = np.ones(lab.shape, bool)
    annotated[:, 50:] = False
    t = instance_targets(lab, InstanceTargetConfig(boundary_width=2), annotated)
    assert t.dtype == np.uint8
    assert set(np.unique(t)) == {IGNORE, BACKGROUND, INTERIOR, BOUNDARY}
    assert t[20, 20] == INTERIOR and t[0, 0] == BACKGROUND and t[0, 60] == IGNORE
    assert t[20, 20 - 8] == BOUNDARY
    with pytest.raises(ValueError, match="annotated mask shape"):
        instance_targets(lab, None, annotated[:10])


def test_instance_targets_reject_bad_labels():
    with pytest.raises(ValueError, match="2D or 3D"):
        instance_targets(np.zeros((2, 2, 2, 2), int))
    with pytest.raises(ValueError, match=">= 0"):
        instance_targets(-np.ones((4, 4), int))
    with pytest.raises(ValueError, match="whole numbers"):
        instance_targets(np.full((4, 4), 0.5))


def test_annotated_region_excludes_unlabelled_markers_only():
    truth = disks()
    sparse = np.where(truth == 1, 1, 0)  # only object 1 labelled
    markers = np.zeros_like(truth)
    for i in (1, 2, 3):  # markers: small cores of every object
        y, x = (int(v.mean()) for v in np.nonzero(truth == i))
        markers[y - 2 : y + 3, x - 2 : x + 3] = i
    region = annotated_region(sparse, markers, margin=8)
    assert region[truth == 1].all()
    assert not region[20, 40] and not region[45, 30]  # unlabelled nuclei are not "background"
    assert region[60, 5] and region[3, 60]  # far background stays annotated
    t = instance_targets(sparse, None, region)
    assert (t[truth == 2] == IGNORE).mean() > 0.95
    # fully labelled frame: everything is annotated
    assert annotated_region(truth, markers).all()


def test_foreground_targets_convex_blob_vs_clump():
    lab = disks(centres=((20, 20), (45, 22), (45, 38)), radius=9)  # 2 and 3 touch: a clump
    t = foreground_targets(lab > 0, InstanceTargetConfig(boundary_width=2, min_solidity=0.95))
    assert t[20, 20] == INTERIOR  # single round nucleus: trained as one object
    assert t[45, 30] == IGNORE  # inside the clump: where it splits is unknown
    assert t[45, 14] == BOUNDARY and t[0, 0] == BACKGROUND


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


def test_median_diameter_2d_and_3d():
    lab = disks(radius=9)
    d = median_diameter(lab)
    assert 16 < d < 19
    assert median_diameter(np.stack([lab, lab])) == pytest.approx(d)
    assert median_diameter(np.zeros((4, 4), int)) == 0.0
