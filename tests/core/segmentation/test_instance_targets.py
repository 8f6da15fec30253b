
import numpy as np
import pytest

from cellsight.config.instances import (
    BACKGROUND,
    BOUNDARY,
    IGNORE,
    INTERIOR,
    InstanceTargetConfig,
)
from cellsight.core.segmentation.instance_targets import (
    annotated_region,
    boundary_map,
    foreground_targets,
    instance_targets,
    median_diameter,
)


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


def test_median_diameter_2d_and_3d():
    lab = disks(radius=9)
    d = median_diameter(lab)
    assert 16 < d < 19
    assert median_diameter(np.stack([lab, lab])) == pytest.approx(d)
    assert median_diameter(np.zeros((4, 4), int)) == 0.0


def test_median_diameter_of_huge_ids_needs_no_huge_table():
    lab = disks(radius=9).astype(np.uint32)
    sparse = np.where(lab > 0, lab.astype(np.uint64) * 1_000_000_000, 0).astype(np.uint64)
    assert median_diameter(sparse) == pytest.approx(median_diameter(lab))  # ids up to ~4e9
