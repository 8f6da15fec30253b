"""What a user sees in napari: samples in the menu, TIFFs opened by cellsight's reader."""

import numpy as np

from cellsight.io.tiff import write_image


def test_samples_open_with_proper_names(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("cellsight", "nuclei_2d")
    assert [layer.name for layer in viewer.layers] == ["DSB2018 nuclei", "DSB2018 nuclei masks"]
    assert viewer.layers["DSB2018 nuclei masks"].__class__.__name__ == "Labels"
    viewer.open_sample("cellsight", "hela_timelapse")
    hela = viewer.layers["HeLa nuclei time-lapse"]
    assert hela.data.shape == (20, 256, 256)
    assert tuple(hela.axis_labels) == ("t", "y", "x")
    assert str(hela.units[-1]) == "micrometer" and hela.scale[-1] == 0.645


def test_micrometres_from_an_ome_tiff_reach_the_viewer(make_napari_viewer, tmp_path):
    import tifffile

    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, np.zeros((20, 30), np.uint16), ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65})
    viewer = make_napari_viewer()
    layer = viewer.open(str(path), plugin="cellsight")[0]
    np.testing.assert_allclose(layer.scale, (0.65, 0.65))
    assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]


def test_reader_opens_tiff_with_scale(make_napari_viewer, tmp_path):
    path = tmp_path / "stack.tif"
    write_image(path, np.ones((3, 16, 16), np.uint16), axes="ZYX", scale=(2.0, 0.5, 0.5))
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="cellsight")
    assert layers[0].name == "stack"
    np.testing.assert_allclose(layers[0].scale, (2.0, 0.5, 0.5))


def test_results_viewer_opens_pipeline_output(make_napari_viewer, tmp_path):
    from cellsight.gui.results import open_results
    from cellsight.pipeline import run_pipeline

    run_pipeline(tmp_path)
    viewer = make_napari_viewer()
    layers = open_results(viewer, tmp_path)
    kinds = {type(layer).__name__ for layer in layers}
    assert kinds == {"Image", "Labels", "Tracks"}
    assert len(viewer.layers) >= 5
