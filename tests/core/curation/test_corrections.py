import numpy as np
import pytest

from cellsight.core.curation import corrections as c


def two_touching():
    lab = np.zeros((20, 30), np.int32)
    lab[5:15, 3:13] = 1
    lab[5:15, 13:25] = 2
    return lab


def test_merge_delete_relabel_do_not_modify_input():
    lab = two_touching()
    before = lab.copy()
    merged = c.merge_labels(lab, [2, 1])
    assert set(np.unique(merged)) == {0, 1}
    assert set(np.unique(c.delete_labels(lab, 2))) == {0, 1}
    gapped = lab.copy()
    gapped[gapped == 2] = 7
    assert set(np.unique(c.relabel_sequential(gapped))) == {0, 1, 2}
    np.testing.assert_array_equal(lab, before)


def test_bad_selection_errors():
    lab = two_touching()
    with pytest.raises(ValueError, match="No label selected"):
        c.merge_labels(lab, [0])
    with pytest.raises(ValueError, match="do not exist"):
        c.delete_labels(lab, [9])
    with pytest.raises(ValueError, match="at least two"):
        c.merge_labels(lab, [1])


def test_fill_holes():
    lab = two_touching()
    lab[8:10, 6:8] = 0
    assert (c.fill_holes(lab)[8:10, 6:8] == 1).all()


def test_split_with_seeds_2d_and_3d():
    merged = c.merge_labels(two_touching(), [1, 2])
    out = c.split_label(merged, 1, [(10, 6), (10, 20)])
    assert set(np.unique(out)) == {0, 1, 2}
    assert out[10, 5] != out[10, 22]
    vol = np.stack([merged] * 4)
    out3 = c.split_label(vol, 1, [(1, 10, 6), (2, 10, 20)])
    assert len(np.unique(out3)) == 3
    with pytest.raises(ValueError, match="inside object"):
        c.split_label(merged, 1, [(0, 0), (10, 6)])


def test_split_by_line():
    merged = c.merge_labels(two_touching(), [1, 2])
    out = c.split_by_line(merged, 1, [(2, 13), (18, 13)])
    assert len(np.unique(out)) == 3
    assert (out > 0).sum() == (merged > 0).sum()  # line pixels given back
    with pytest.raises(ValueError, match="does not cut"):
        c.split_by_line(merged, 1, [(2, 0), (2, 1)])


def test_edited_mask_ignores_renumbering_but_sees_merge_split_paint():
    lab = two_touching()
    renumbered = np.where(lab == 1, 5, lab)
    assert not c.edited_mask(lab, renumbered).any()
    merged = c.merge_labels(lab, [1, 2])
    # the smaller of the merged parts (object 1, 100 px) is what changed owner
    assert c.edited_mask(lab, merged).sum() == (lab == 1).sum() == 100
    split_back = c.edited_mask(merged, lab)
    assert split_back.sum() == 100
    painted = lab.copy()
    painted[0:2, 0:2] = 3
    regions = c.edited_regions(lab, painted)
    assert len(regions) == 1 and regions[0].n_pixels == 4


def test_edited_regions_per_frame():
    pred = np.stack([two_touching()] * 3)
    corr = pred.copy()
    corr[2] = c.delete_labels(corr[2], 1)
    regions = c.edited_regions(pred, corr, time_axis=True)
    assert [r.frame for r in regions] == [2]


def test_edit_frames_one_time_point_each_or_whole():
    from cellsight.core.curation.corrections import delete_labels, edit_frames, fill_holes

    movie = np.zeros((3, 7, 7), np.int32)
    movie[:, 1:6, 1:6] = 4
    movie[:, 3, 3] = 0  # a hole in every frame
    movie[2, 0, 0] = 9  # id 9 only in the last frame
    one = edit_frames(movie, lambda lab: delete_labels(lab, [4]), frame=1)
    assert (one[1] == 0).all() and (one[[0, 2]] == movie[[0, 2]]).all()
    each = edit_frames(movie, lambda lab: delete_labels(lab, [9]), per_frame=True)
    assert 9 not in each and (each[:2] == movie[:2]).all()  # frames without 9 kept as they were
    filled = edit_frames(movie, fill_holes, per_frame=True)
    assert (filled[:, 3, 3] == 4).all()
    assert (edit_frames(movie, lambda lab: lab + 0) == movie).all() and movie[1, 3, 3] == 0
    with pytest.raises(ValueError, match="outside"):
        edit_frames(movie, fill_holes, frame=3)
    with pytest.raises(ValueError, match="do not exist"):
        edit_frames(movie, lambda lab: delete_labels(lab, [5]), per_frame=True)
    with pytest.raises(ValueError, match="no time axis"):
        edit_frames(movie[0], fill_holes, frame=0)
