import numpy as np
import pytest

from cellsight.core.curation import uncertainty as u


def test_tta_inverts_transforms_for_equivariant_predictor():
    img = np.random.default_rng(0).random((16, 20)).astype(np.float32)
    views = u.tta_predict(lambda a: a[None] * 0.5, img, n_views=6)
    assert views.shape == (6, 1, 16, 20)
    np.testing.assert_allclose(views, np.broadcast_to(img[None, None] * 0.5, views.shape))


def test_non_equivariant_predictor_shows_disagreement():
    img = np.zeros((16, 16), np.float32)
    ramp = np.linspace(0, 1, 16, dtype=np.float32)

    def biased(a):  # depends on absolute position: breaks under flips
        return np.broadcast_to(ramp, a.shape)[None].copy()

    unc = u.pixel_uncertainty(u.tta_predict(biased, img, n_views=2))
    confident = u.pixel_uncertainty(np.stack([np.full((1, 16, 16), 0.99)] * 2))
    assert unc.mean() > confident.mean() + 0.2


def test_rank_objects_puts_uncertain_first():
    labels = np.zeros((30, 30), np.int32)
    labels[2:8, 2:8] = 1
    labels[20:26, 20:26] = 2
    unc = np.zeros((30, 30), np.float32)
    unc[19:27, 19:27] = 0.8
    items = u.rank_objects(labels, unc, frame=3)
    assert [it.label for it in items] == [2, 1]
    assert items[0].frame == 3
    assert items[0].centroid == pytest.approx((22.5, 22.5))
    assert u.rank_objects(np.zeros((4, 4), int), np.zeros((4, 4))) == []


def test_bad_input():
    with pytest.raises(ValueError, match="views"):
        u.tta_predict(lambda a: a[None], np.zeros((4, 4)), n_views=1)
    with pytest.raises(ValueError, match="differ"):
        u.rank_objects(np.zeros((4, 4), int), np.zeros((5, 5)))


def test_dihedral_views_are_the_eight_symmetries_and_invert():
    a = np.arange(2 * 3 * 5).reshape(2, 3, 5)  # non-square, with a leading channel axis
    outs = []
    for forward, inverse in u.dihedral_views(8):
        out = forward(a)
        np.testing.assert_array_equal(inverse(out), a)
        np.testing.assert_array_equal(out[0], forward(a[0]))  # acts on the last two axes only
        outs.append(out[0].tobytes() + bytes(out.shape))
    assert len(set(outs)) == 8
    with pytest.raises(ValueError, match="1..8 views"):
        u.dihedral_views(9)
