"""bioimage.io packages in the docks: the model chooser, the trust dialog, Export package…."""

import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from qtpy.QtWidgets import QFileDialog, QMessageBox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_bmz import foreign_copy, tiny_model  # noqa: E402

CAREAMICS = Path(__file__).resolve().parents[1] / "data" / "bmz" / "careamics_n2v_w2s_ts.zip"


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    from cellsight.core.bmz.export import export_package

    folder = tmp_path_factory.mktemp("dockpkgs")
    made = {}
    for task in ("semantic", "instance"):
        own = export_package(tiny_model(task), folder / f"{task}.zip")
        made[task] = own
        made[f"code-{task}"] = foreign_copy(own, folder / f"code-{task}.zip", torchscript=False)
    return made


def _answer(monkeypatch, answer):
    asked = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_model_chooser_offers_a_package_picker(monkeypatch, qtbot, packages):
    from cellsight.gui.toolkit.models import PACKAGE_ITEM, ModelChooser

    chooser = ModelChooser()
    qtbot.addWidget(chooser)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(packages["instance"]), "*.zip"))
    seen = []
    chooser.chosen.connect(seen.append)
    chooser.activated.emit(chooser.findText(PACKAGE_ITEM))
    assert seen == [str(packages["instance"])] and chooser.source() == str(packages["instance"])


def test_denoise_dock_runs_the_careamics_package(make_napari_viewer, qtbot):
    from cellsight.core.bmz.run import load_package, predict_package
    from cellsight.gui.denoise_widget import DenoiseWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    image = rng.normal(60, 20, (80, 90)).astype(np.float32)
    viewer.add_image(image, name="noisy")
    widget = DenoiseWidget(viewer)
    widget.device_box.setCurrentText("cpu")
    widget.load_model(str(CAREAMICS))  # torchscript: no question asked
    assert widget.apply_button.isEnabled() and not widget.export_button.isEnabled()
    job = widget.start_apply()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done", widget.status.text()
    expected = predict_package(load_package(CAREAMICS), image, device="cpu").image
    np.testing.assert_allclose(viewer.layers["noisy denoised"].data, expected, atol=1e-5)


def test_trust_dialog_no_runs_nothing_yes_segments(make_napari_viewer, qtbot, monkeypatch,
                                                   packages):
    from cellsight.gui.semantic_widget import SemanticWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((48, 40)).astype(np.float32), name="img")
    widget = SemanticWidget(viewer)
    widget.device_box.setCurrentText("cpu")
    pkg = packages["code-semantic"]
    sha = hashlib.sha256(zipfile.ZipFile(pkg).read("cellsight_unet.py")).hexdigest()
    asked = _answer(monkeypatch, QMessageBox.No)
    widget.load_model(str(pkg))
    assert len(asked) == 1 and "cellsight_unet.py" in asked[0] and sha in asked[0]
    assert widget.model is None and "not allowed" in widget.status.text()
    assert not widget.predict_button.isEnabled()
    asked = _answer(monkeypatch, QMessageBox.Yes)
    widget.load_model(str(pkg))
    assert widget.model is not None and widget.model.weights == "pytorch_state_dict"
    job = widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None, timeout=30_000)
    assert job.state == "done", widget.status.text()
    assert "img semantic (package)" in viewer.layers


def test_instance_dock_asks_then_segments_with_live_thresholds(make_napari_viewer, qtbot,
                                                                monkeypatch, packages):
    from cellsight.gui.instance_widget import InstanceWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(1).random((48, 40)).astype(np.float32), name="img")
    widget = InstanceWidget(viewer)
    widget.model_box.set_source(str(packages["code-instance"]))
    asked = _answer(monkeypatch, QMessageBox.No)
    assert widget.start_predict() is None and len(asked) == 1 and widget.job is None
    asked = _answer(monkeypatch, QMessageBox.Yes)
    job = widget.start_predict()
    qtbot.waitUntil(lambda: widget.job is None and widget.ws_job is None
                    and widget.maps is not None, timeout=30_000)
    assert job.state == "done", widget.status.text()
    assert widget.maps.foreground.shape == (48, 40)
    assert "objects" in widget.status.text()


def test_export_package_button(make_napari_viewer, qtbot, monkeypatch, tmp_path, packages):
    from cellsight.gui.instance_widget import InstanceWidget

    viewer = make_napari_viewer()
    widget = InstanceWidget(viewer)
    folder = tiny_model("instance").save(tmp_path / "mymodel")
    widget.model_box.set_source(str(folder))
    out = tmp_path / "exported.zip"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "*.zip"))
    job = widget.start_export()
    qtbot.waitUntil(lambda: widget.job is None, timeout=60_000)
    assert job.state == "done", widget.status.text()
    rdf = yaml.safe_load(zipfile.ZipFile(out).read("rdf.yaml"))
    assert rdf["config"]["cellsight"]["task"] == "instance"
    assert "Package written" in widget.status.text()
    before = out.read_bytes()
    assert widget.start_export() is None  # an existing file is never overwritten
    assert out.read_bytes() == before


def test_finetune_dock_fine_tunes_a_package_into_a_new_version(make_napari_viewer, qtbot,
                                                               monkeypatch, tmp_path, packages):
    import shutil

    from cellsight.gui.finetune_widget import FineTuneWidget
    from cellsight.plugin.samples import load_sample

    viewer = make_napari_viewer()
    viewer.add_image(load_sample("nuclei_2d")[:96, :128], name="img")
    viewer.add_labels(load_sample("nuclei_2d_masks")[:96, :128], name="corrected")
    pkg = shutil.copy(packages["code-instance"], tmp_path / "theirs.zip")
    widget = FineTuneWidget(viewer)
    widget.form.editors["steps"].setValue(2)
    widget.set_model_folder(str(pkg))
    _answer(monkeypatch, QMessageBox.Yes)
    job = widget.start_fine_tune()
    qtbot.waitUntil(lambda: widget.job is None, timeout=60_000)
    assert job.state == "done", widget.status.text()
    new = tmp_path / "theirs-ft001.zip"
    assert new.is_file() and "AP@0.5" in widget.status.text()
    rdf = yaml.safe_load(zipfile.ZipFile(new).read("rdf.yaml"))
    assert rdf["config"]["cellsight"]["parent"]["sha256"] == hashlib.sha256(
        Path(pkg).read_bytes()).hexdigest()


def _run(qtbot, widget, start) -> None:
    """Start a dock's job and wait until it is done."""
    job = start()
    assert job is not None
    qtbot.waitUntil(lambda: widget.job is None, timeout=120_000)
    assert job.state == "done", widget.status.text()


def _big_layer(make_napari_viewer, tmp_path, name: str, image):
    """A viewer showing ``image`` opened lazily from ``NAME.ome.zarr`` (a big layer)."""
    from cellsight.io.omezarr import write_ome_zarr
    from cellsight.plugin.hooks import read_ome_zarr_layers

    path = tmp_path / f"{name}.ome.zarr"
    write_ome_zarr(path, image, axes="YX", chunks=(64, 64))
    viewer = make_napari_viewer()
    data, meta, _ = read_ome_zarr_layers(str(path))[0]
    viewer.add_image(data, **meta)
    return viewer


def test_instance_dock_runs_a_package_blockwise_on_a_big_layer(make_napari_viewer, qtbot,
                                                              tmp_path, packages):
    import dask.array as da

    from cellsight.config.blocks import BlockConfig
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import load_package
    from cellsight.gui.instance_widget import InstanceWidget

    image = np.random.default_rng(3).random((128, 128)).astype(np.float32)
    viewer = _big_layer(make_napari_viewer, tmp_path, "scan", image)
    widget = InstanceWidget(viewer)
    widget.big.form.editors["block_size"].setValue(64)
    widget.predict_form.editors["device"].setCurrentText("cpu")
    other = foreign_copy(packages["instance"], tmp_path / "other.zip")  # TorchScript: no code
    widget.model_box.set_source(str(other))
    _run(qtbot, widget, widget.start_predict)
    out = viewer.layers["scan nuclei"]
    assert isinstance(out.data[0], da.Array) and (tmp_path / "scan_nuclei.ome.zarr").is_dir()
    core = predict_package_blockwise(load_package(other), image,
                                     blocks=BlockConfig(block_size=64), device="cpu",
                                     post=widget.post_config())
    np.testing.assert_array_equal(np.asarray(out.data[0]), core.labels)


def test_denoise_dock_runs_the_careamics_package_blockwise(make_napari_viewer, qtbot,
                                                            tmp_path):
    import dask.array as da

    from cellsight.config.blocks import BlockConfig
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import load_package
    from cellsight.gui.denoise_widget import DenoiseWidget

    image = np.random.default_rng(4).normal(60, 20, (128, 128)).astype(np.float32)
    viewer = _big_layer(make_napari_viewer, tmp_path, "noisy", image)
    widget = DenoiseWidget(viewer)
    widget.big.form.editors["block_size"].setValue(64)
    widget.load_model(str(CAREAMICS))
    _run(qtbot, widget, widget.start_apply)
    out = viewer.layers["noisy denoised"]
    assert isinstance(out.data[0], da.Array)
    core = predict_package_blockwise(load_package(CAREAMICS), image,
                                     blocks=BlockConfig(block_size=64))
    np.testing.assert_allclose(np.asarray(out.data[0]), core.labels, atol=1e-4)


def test_semantic_dock_runs_a_package_blockwise_on_a_big_layer(make_napari_viewer, qtbot,
                                                              tmp_path, packages):
    from cellsight.config.blocks import BlockConfig
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import load_package
    from cellsight.gui.semantic_widget import SemanticWidget

    image = np.random.default_rng(5).random((128, 128)).astype(np.float32)
    viewer = _big_layer(make_napari_viewer, tmp_path, "tissue", image)
    widget = SemanticWidget(viewer)
    widget.device_box.setCurrentText("cpu")
    widget.big.form.editors["block_size"].setValue(64)
    other = foreign_copy(packages["semantic"], tmp_path / "other.zip")  # TorchScript: no code
    widget.load_model(str(other))
    _run(qtbot, widget, widget.start_predict)
    out = viewer.layers["tissue classes"]
    core = predict_package_blockwise(load_package(other), image,
                                     blocks=BlockConfig(block_size=64), device="auto")
    np.testing.assert_array_equal(np.asarray(out.data[0]), core.labels)
