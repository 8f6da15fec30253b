"""Big layers in the docks: blockwise into a new OME-Zarr, live layer, visible-region preview."""

import dask.array as da
import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.gui.big_data import is_big, output_path, unique_path, visible_region
from cellsight.gui.instance_widget import InstanceWidget
from cellsight.io.omezarr import write_ome_zarr
from cellsight.plugin.hooks import read_ome_zarr_layers
from cellsight.plugin.samples import load_sample


def _open(viewer, path):
    data, meta, kind = read_ome_zarr_layers(str(path))[0]
    return viewer.add_image(data, **meta)


@pytest.fixture
def big(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    path = tmp_path / "scan.ome.zarr"
    write_ome_zarr(path, load_sample("nuclei_2d")[:192, :192], axes="YX", chunks=(64, 64))
    layer = _open(viewer, path)
    widget = InstanceWidget(viewer)
    widget.big.form.editors["block_size"].setValue(64)
    widget.predict_form.editors["device"].setCurrentText("cpu")
    widget.predict_form.editors["diameter"].setValue(24)
    return viewer, widget, layer, tmp_path


def test_output_names_never_overwrite(tmp_path, make_napari_viewer):
    assert unique_path(tmp_path, "a_nuclei") == tmp_path / "a_nuclei.ome.zarr"
    (tmp_path / "a_nuclei.ome.zarr").mkdir()
    (tmp_path / "a_nuclei-2.ome.zarr.partial").mkdir()
    assert unique_path(tmp_path, "a_nuclei") == tmp_path / "a_nuclei-3.ome.zarr"
    viewer = make_napari_viewer()
    small = viewer.add_image(np.zeros((8, 8)), name="small")
    lazy = viewer.add_image(da.zeros((8, 8)), name="lazy")
    assert not is_big(small) and is_big(lazy)
    assert output_path(lazy, "classes").name == "lazy_classes.ome.zarr"


def test_instance_dock_runs_blockwise_into_a_lazy_layer(big, qtbot):
    viewer, widget, layer, tmp_path = big
    assert layer.multiscale and is_big(layer)
    gaps, clock, timer = [], QElapsedTimer(), QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: gaps.append(clock.restart()))
    clock.start()
    timer.start()
    job = widget.start_predict()
    assert job is not None and widget.stop_button.isEnabled()
    qtbot.waitUntil(lambda: widget.job is None, timeout=120_000)
    timer.stop()
    assert job.state == "done", widget.status.text()
    assert len(gaps) > 20 and np.median(gaps) < 100  # the event loop kept ticking
    out = viewer.layers["scan nuclei"]
    assert out.multiscale and out.metadata["path"] == str(tmp_path / "scan_nuclei.ome.zarr")
    labels = np.asarray(out.data[0])
    assert labels.shape == (192, 192) and labels.max() > 10
    assert isinstance(out.data[0], da.Array)  # lazy: backed by the final zarr
    assert not (tmp_path / "scan_nuclei.ome.zarr.partial").exists()
    assert "objects" in widget.status.text()

    job = widget.start_predict()  # a second run writes a new file
    qtbot.waitUntil(lambda: widget.job is None, timeout=120_000)
    assert (tmp_path / "scan_nuclei-2.ome.zarr").is_dir()


def test_visible_region_preview_sits_in_place(big, qtbot):
    viewer, widget, layer, _ = big
    layer.scale = (0.5, 0.5)
    viewer.scene.camera.center = (0, 50, 40)  # world units: pixels (100, 80)
    viewer.scene.camera.zoom = max(viewer.canvas.size) / 40  # about 80 pixels across
    region = visible_region(viewer, layer)
    assert 0 < region[0].start < 100 < region[0].stop < 192
    widget.big.visible_check.setChecked(True)
    job = widget.start_predict()
    qtbot.waitUntil(lambda: "scan instances (visible region)" in viewer.layers, timeout=60_000)
    qtbot.waitUntil(lambda: widget.job is None and widget.ws_job is None, timeout=10_000)
    assert job.state == "done"
    preview = viewer.layers["scan instances (visible region)"]
    assert preview.data.shape == tuple(s.stop - s.start for s in region)
    assert np.allclose(preview.translate, [s.start * 0.5 for s in region])
    assert np.allclose(preview.scale, (0.5, 0.5)) and preview.data.max() > 0


def test_denoise_dock_applies_a_model_blockwise(make_napari_viewer, qtbot, tmp_path):
    from cellsight.config.n2v import N2VConfig
    from cellsight.core.denoise import train_n2v
    from cellsight.gui.denoise_widget import DenoiseWidget

    noisy = np.random.default_rng(0).poisson(30, size=(160, 160)).astype(np.float32)
    path = tmp_path / "noisy.ome.zarr"
    write_ome_zarr(path, noisy, axes="YX", chunks=(64, 64))
    viewer = make_napari_viewer()
    layer = _open(viewer, path)
    widget = DenoiseWidget(viewer)
    widget.device_box.setCurrentText("cpu")
    widget.big.form.editors["block_size"].setValue(64)
    assert widget.start() is None  # a big layer is not trained on whole
    widget.model = train_n2v(noisy, N2VConfig(steps=5, patch_size=32, batch_size=2,
                                              device="cpu"))
    added_while_running = []
    viewer.layers.events.inserted.connect(
        lambda e: added_while_running.append(widget.job is not None))
    job = widget.start_apply()
    qtbot.waitUntil(lambda: widget.job is None, timeout=120_000)
    assert job.state == "done", widget.status.text()
    out = viewer.layers["noisy denoised"]
    assert added_while_running == [True]  # shown from the partial zarr while it ran
    assert out.metadata["path"] == str(tmp_path / "noisy_denoised.ome.zarr")
    result = np.asarray(out.data[0])
    assert result.shape == noisy.shape and result.std() < noisy.std()
    assert tuple(out.contrast_limits) == tuple(layer.contrast_limits)
