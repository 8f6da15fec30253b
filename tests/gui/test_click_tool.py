"""Click to segment in the Correct labels dock: 2D, 3D, time, undo, the mouse path."""

import os
import types

import numpy as np
import pytest
from qtpy.QtCore import QTimer
from skimage.measure import regionprops

from cellsight.config.clicks import ClickConfig
from cellsight.core.curation.clicks import interior_point, iou
from cellsight.gui.corrections_widget import CorrectionsWidget
from cellsight.io.tiff import read_image
from cellsight.plugin.samples import load_sample

MODEL = os.environ.get("CELLSIGHT_CLICK_MODEL", "clicks")


def _dock(viewer, image, labels, name="labels"):
    viewer.add_image(image, name="image")
    layer = viewer.add_labels(labels, name=name)
    dock = CorrectionsWidget(viewer)
    tool = dock.click_tool
    tool.config = ClickConfig(model=MODEL)
    tool.image_box.value = viewer.layers["image"]
    tool.on_box.setChecked(True)
    return layer, dock, tool


def drive(tool, layer, steps):
    """Feed a press / move / release sequence to the tool's mouse callback (a generator)."""
    event = types.SimpleNamespace(**steps[0])
    gen = tool._mouse(layer, event)
    if gen is None:
        return
    next(gen)
    for step in steps[1:]:
        for key, value in step.items():
            setattr(event, key, value)
        try:
            next(gen)
        except StopIteration:
            break


def _wait(qtbot, tool, timeout=60000):
    qtbot.waitUntil(lambda: not tool.busy and not tool._queue, timeout=timeout)


@pytest.fixture
def nuclei(make_napari_viewer):
    viewer = make_napari_viewer()
    image = load_sample("nuclei_2d")
    truth = load_sample("nuclei_2d_masks")
    layer, dock, tool = _dock(viewer, image, np.zeros(truth.shape, np.int32))
    big = sorted(regionprops(truth), key=lambda r: -r.area)[:2]
    return viewer, layer, dock, tool, truth, big


def test_clicks_make_new_labels_undoably_and_keep_the_event_loop(nuclei, qtbot):
    viewer, layer, dock, tool, truth, big = nuclei
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    y, x = interior_point(truth == big[0].label)
    tool.prompt("click", (y, x))
    assert tool.busy  # the network runs in a worker
    _wait(qtbot, tool)
    timer.stop()
    assert len(ticks) >= 3  # the event loop kept running while it worked
    assert layer.data[y, x] == 1
    assert iou(layer.data == 1, truth == big[0].label) > 0.7
    # Enter finishes the object; the next click is a new label
    tool.commit()
    y2, x2 = interior_point(truth == big[1].label)
    tool.prompt("click", (y2, x2))
    _wait(qtbot, tool)
    assert layer.data[y2, x2] == 2 and layer.data[y, x] == 1
    # every step is one undo
    layer.undo()
    assert (layer.data == 2).sum() == 0 and layer.data[y, x] == 1
    layer.undo()
    assert layer.data.max() == 0
    assert "label" in dock.status.text()


def test_negative_click_and_redraw_of_an_existing_label(nuclei, qtbot):
    viewer, layer, dock, tool, truth, big = nuclei
    t = truth == big[0].label
    y, x = interior_point(t)
    tool.prompt("click", (y, x))
    _wait(qtbot, tool)
    before = (layer.data == 1).sum()
    ys, xs = np.nonzero(layer.data == 1)
    far = int(np.argmax((ys - y) ** 2 + (xs - x) ** 2))  # an edge pixel of the mask
    tool.prompt("click", (ys[far], xs[far]), negative=True)
    _wait(qtbot, tool)
    assert layer.data[ys[far], xs[far]] == 0 and layer.data[y, x] == 1
    assert (layer.data == 1).sum() < before
    # a first click inside an existing label re-draws that label (its id is kept)
    tool.commit()
    data = np.asarray(layer.data).copy()
    data[t] = 7
    layer.data = data
    tool.prompt("click", (y, x))
    _wait(qtbot, tool)
    assert layer.data[y, x] == 7 and (layer.data == 8).sum() == 0


def test_box_drag_and_plain_click_through_the_mouse_callback(nuclei, qtbot):
    viewer, layer, dock, tool, truth, big = nuclei
    r = big[0]
    y0, x0, y1, x1 = r.bbox

    drive(tool, layer, [dict(position=(y0 - 2, x0 - 2), modifiers=("Control",),
                             type="mouse_press"),
                        dict(type="mouse_move", position=(y1, x1)),
                        dict(type="mouse_release", position=(y1 + 2, x1 + 2))])
    _wait(qtbot, tool)
    assert iou(layer.data == 1, truth == r.label) > 0.6
    assert layer.mouse_pan  # panning is back after the box drag
    tool.commit()
    y, x = interior_point(truth == big[1].label)
    drive(tool, layer, [dict(position=(y, x), modifiers=(), type="mouse_press"),
                        dict(type="mouse_release", position=(y, x))])
    _wait(qtbot, tool)
    assert layer.data[y, x] == 2


def test_tool_needs_a_labels_layer_and_an_image(make_napari_viewer, monkeypatch, qtbot):
    viewer = make_napari_viewer()
    dock = CorrectionsWidget(viewer)
    errors = []
    monkeypatch.setattr("cellsight.gui.click_tool.show_error", errors.append)
    dock.click_tool.on_box.setChecked(True)
    assert not dock.click_tool.on_box.isChecked() and "Labels layer" in errors[-1]
    layer = viewer.add_labels(np.zeros((32, 32), np.int32))
    dock.layer_box.value = layer
    dock.click_tool.on_box.setChecked(True)
    dock.click_tool.prompt("click", (5, 5))
    assert "image" in errors[-1].lower() and layer.data.max() == 0


def test_3d_click_follows_through_slices(make_napari_viewer, qtbot, shared_data):
    stack = read_image(shared_data / "nuclei3d/bbbc050/images/Emb1_t401.tif").data
    labels = read_image(shared_data / "nuclei3d/bbbc050/labels/Emb1_t401.tif").data
    viewer = make_napari_viewer()
    layer, dock, tool = _dock(viewer, stack, np.zeros(labels.shape, np.int32))
    layer.metadata["axes"] = "ZYX"  # a z-stack (as read from a file with axes)
    region = max(regionprops(labels), key=lambda r: r.area)
    t = labels == region.label
    z = int(np.argmax(t.sum(axis=(1, 2))))
    y, x = interior_point(t[z])
    tool.prompt("click", (z, y, x))
    _wait(qtbot, tool)
    got = layer.data == 1
    assert got[z, y, x]
    assert got.any(axis=(1, 2)).sum() > 1  # followed to other slices
    layer.undo()
    assert layer.data.max() == 0  # the whole followed object is one step


def test_follow_to_next_frame_keeps_the_label(make_napari_viewer, qtbot):
    hela = load_sample("hela_timelapse")[:3]
    viewer = make_napari_viewer()
    layer, dock, tool = _dock(viewer, hela, np.zeros(hela.shape, np.int32))
    # a bright nucleus in frame 0: the maximum of the smoothed frame
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(hela[0].astype(float), 4)
    y, x = np.unravel_index(int(smooth.argmax()), smooth.shape)
    viewer.dims.set_current_step(0, 0)
    tool.prompt("click", (0, y, x))
    _wait(qtbot, tool)
    assert layer.data[0, y, x] == 1 and layer.data[1].max() == 0
    tool.follow_next_frame()
    qtbot.waitUntil(lambda: not tool.busy, timeout=60000)
    assert (layer.data[1] == 1).sum() > 0.5 * (layer.data[0] == 1).sum()
    assert viewer.dims.current_step[0] == 1
