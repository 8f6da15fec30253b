"""Click to segment: geometry, the simulated annotator, and the built-in model on real data."""

import json
import os

import numpy as np
import pytest
from skimage.measure import regionprops

from cellsight.config.clicks import ClickConfig
from cellsight.core.curation import clicks as cl
from cellsight.io.tiff import read_image

#: the model the quality tests use (the built-in one unless a test run points elsewhere)
MODEL = os.environ.get("CELLSIGHT_CLICK_MODEL", "clicks")


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_cut_pads_outside_the_image_and_maps_points():
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    window = cl.Window(-1, 2, 4)
    out = cl.cut(image, window, fill=-1)
    assert out.shape == (4, 4)
    assert (out[0] == -1).all() and (out[:, 2:] == -1).all()
    assert out[1, 0] == image[0, 2] and out[3, 1] == image[2, 3]
    assert window.to_crop(-1, 2, 8) == (0.5, 0.5)  # pixel centre of a 2x upscale


def test_box_window_covers_mask_and_points_with_context():
    mask = np.zeros((100, 100), bool)
    mask[40:50, 30:60] = True
    w = cl.box_window(mask, [(70, 45)], context=1.5)
    assert w.side == 46  # the box is 31 x 30 px, times 1.5
    assert w.y0 <= 40 and w.y0 + w.side >= 71 and w.x0 <= 30 and w.x0 + w.side >= 60


def test_next_click_goes_to_the_centre_of_the_largest_error():
    truth = disc((64, 64), 30, 30, 10)
    c = cl.next_click(np.zeros_like(truth), truth)
    assert (c.y, c.x, c.positive) == (30, 30, True)
    extra = truth | disc((64, 64), 30, 52, 6)
    c = cl.next_click(extra, truth)
    assert not c.positive and abs(c.x - 52) <= 1
    assert cl.next_click(truth, truth) is None


def test_paint_object_never_overwrites_other_objects():
    labels = np.zeros((10, 10), np.int32)
    labels[:, :3] = 7
    labels[5:, 5:] = 2
    mask = np.zeros_like(labels, bool)
    mask[4:8, 1:8] = True
    out = cl.paint_object(labels, mask, 2)
    assert (out[:, :3] == 7).all()  # another object kept
    assert (out[4:8, 3:8] == 2).all() and out[9, 9] == 0  # old pixels of 2 outside cleared
    assert labels[9, 9] == 2  # input untouched


def test_bad_input_is_refused_with_one_line(tmp_path):
    with pytest.raises(ValueError, match="No clicks"):
        cl.segment_from_clicks(np.zeros((32, 32)), [], ClickConfig(model=MODEL))
    with pytest.raises(ValueError, match="outside the image"):
        cl.segment_from_clicks(np.random.rand(32, 32), [(40, 3)], ClickConfig(model=MODEL))
    with pytest.raises(ValueError, match="2D image"):
        cl.segment_from_clicks(np.random.rand(3, 32, 32), [(4, 3)], ClickConfig(model=MODEL))
    with pytest.raises(ValueError, match="same slice"):
        cl.segment_from_clicks(np.random.rand(3, 32, 32), [(4, 3)],
                               ClickConfig(model=MODEL, mode="3d"))
    with pytest.raises(ValueError, match="binary"):
        cl.segment_from_clicks(np.zeros((32, 32), bool), [(4, 3)], ClickConfig(model=MODEL))
    with pytest.raises(Exception, match="config.yaml|no such|not exist|missing"):
        cl.load_click_model(str(tmp_path / "nothing"))


def _val_objects(shared_data, repo_root, n_images=3):
    split = json.loads((repo_root / "benchmarks/splits/dsb2018_stage1.json").read_text())
    out = []
    for name in split["val"][:n_images]:
        image = read_image(shared_data / "nuclei2d/dsb2018_stage1/images" / f"{name}.tif").data
        labels = read_image(shared_data / "nuclei2d/dsb2018_stage1/labels" / f"{name}.tif").data
        image = image if image.ndim == 2 else image[..., 0]
        regions = sorted(regionprops(labels), key=lambda r: -r.area)[:4]
        out += [(image, labels == r.label) for r in regions]
    return out


@pytest.mark.slow
def test_one_click_gives_held_out_nuclei(shared_data, repo_root):
    """DSB2018 validation nuclei (never trained on): one click at the centre each."""
    objects = _val_objects(shared_data, repo_root)
    scores = [cl.iou(cl.segment_from_clicks(image, [cl.next_click(np.zeros_like(t), t)],
                                            ClickConfig(model=MODEL)), t)
              for image, t in objects]
    assert np.median(scores) > 0.8, scores


@pytest.mark.slow
def test_more_clicks_improve_and_negative_clicks_remove(shared_data, repo_root):
    image, truth = _val_objects(shared_data, repo_root, 1)[0]
    model = cl.load_click_model(MODEL)
    curve = cl.simulate_annotator(image, truth, model, ClickConfig(model=MODEL), max_clicks=5)
    assert max(curve) >= curve[0] and max(curve) > 0.85, curve
    # a negative click on a part of the mask removes that part, the rest stays
    session = cl.ClickSession(image, ClickConfig(model=MODEL), model)
    y, x = cl.interior_point(truth)
    first = session.add(cl.Click(y, x))
    assert first[y, x]
    ys, xs = np.nonzero(first)
    far = int(np.argmax((ys - y) ** 2 + (xs - x) ** 2))  # the mask pixel farthest away
    after = session.add(cl.Click(ys[far], xs[far], positive=False))
    assert not after[ys[far], xs[far]] and after[y, x]
    assert after.sum() < first.sum() and len(session.clicks) == 2


def test_a_box_prompt_segments_the_object_inside(shared_data, repo_root):
    image, truth = _val_objects(shared_data, repo_root, 1)[1]
    r = regionprops(truth.astype(np.uint8))[0]
    y0, x0, y1, x1 = r.bbox
    session = cl.ClickSession(image, ClickConfig(model=MODEL))
    mask = session.add_box(y0 - 3, x0 - 3, y1 + 3, x1 + 3)
    assert cl.iou(mask, truth) > 0.7
    with pytest.raises(ValueError, match="too small"):
        session.add_box(5, 5, 6, 6)


def test_3d_click_follows_the_nucleus_through_its_slices(shared_data):
    """BBBC050 embryo t401 (held out from training): the object ends where it ends."""
    stack = read_image(shared_data / "nuclei3d/bbbc050/images/Emb1_t401.tif").data
    labels = read_image(shared_data / "nuclei3d/bbbc050/labels/Emb1_t401.tif").data
    region = max(regionprops(labels), key=lambda r: r.area)
    truth = labels == region.label
    z = int(np.argmax(truth.sum(axis=(1, 2))))
    y, x = cl.interior_point(truth[z])
    mask = cl.segment_from_clicks(stack, [cl.Click(y, x, z=z)],
                                  ClickConfig(model=MODEL, mode="3d"))
    assert mask.shape == stack.shape
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    true_slices = np.flatnonzero(truth.any(axis=(1, 2)))
    assert len(slices) >= 0.5 * len(true_slices)
    assert len(slices) < stack.shape[0]  # it stopped
    assert cl.iou(mask, truth) > 0.5


def test_follow_in_time_keeps_the_cell(shared_data):
    """GOWT1 01 frames 0 and 1: the mask of a nucleus seeds the same nucleus next frame."""
    seq = shared_data / "tracking/Fluo-N2DH-GOWT1/01"
    t0, t1 = read_image(seq / "t000.tif").data, read_image(seq / "t001.tif").data
    marker = read_image(shared_data / "tracking/Fluo-N2DH-GOWT1/01_GT/TRA/man_track000.tif").data
    ident = int(np.bincount(marker.ravel())[1:].argmax()) + 1
    y, x = (int(v) for v in np.argwhere(marker == ident).mean(axis=0))
    config = ClickConfig(model=MODEL)
    first = cl.segment_from_clicks(t0, [(y, x)], config)
    assert first[y, x] and 200 < first.sum() < 20000
    nxt = cl.follow(t1, first, config)
    assert cl.iou(nxt, first) > 0.5
