"""Lengths (nucleus diameter, max linking distance) are shown and entered in µm when the
layer has a physical pixel size, and reach the core in pixels."""

import numpy as np
import pytest

from cellsight.gui.instance_widget import InstanceWidget
from cellsight.gui.tracking_widget import TrackingWidget


def test_diameter_is_entered_in_microns_and_predicted_in_pixels(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="pixels")
    w = InstanceWidget(viewer)
    box = w.predict_form.editors["diameter"]
    assert box.suffix() == " px" and box.text() == "auto"
    box.setValue(20)
    assert w.predict_config().diameter == 20
    viewer.add_image(np.zeros((64, 64), np.float32), name="scan", scale=(0.5, 0.5),
                     units=("micrometer", "micrometer"))
    w.image_box.value = viewer.layers["scan"]
    assert box.suffix() == " µm"
    assert box.value() == pytest.approx(10.0)  # the same 20 px, now shown as 10 µm
    box.setValue(6.5)  # a user types 6.5 µm
    config = w.predict_config()
    assert config.diameter == pytest.approx(13.0) and not config.estimate_diameter
    box.setValue(0)
    assert box.text() == "auto" and w.predict_config().estimate_diameter
    w.image_box.value = viewer.layers["pixels"]
    assert box.suffix() == " px"


def test_max_distance_is_entered_in_microns_and_tracked_in_pixels(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 32, 32), np.uint16)
    viewer.add_labels(labels, name="cells", scale=(1, 0.25, 0.25),
                      units=("second", "micrometer", "micrometer"))
    w = TrackingWidget(viewer)
    box = w.form.editors["max_distance"]
    assert w.labels_box.value is viewer.layers["cells"]
    assert box.suffix() == " µm" and box.text() == "auto"
    box.setValue(5.0)
    assert w.config().max_distance == pytest.approx(20.0)
    w.form.set_unit("max_distance", None)
    assert box.suffix() == " px" and box.value() == pytest.approx(20.0)
