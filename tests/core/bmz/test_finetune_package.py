"""Fine-tuning a package written by another tool and writing it as a new version."""

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from cellsight.config.finetune import FineTuneConfig
from cellsight.core.bmz.export import export_package
from cellsight.core.bmz.finetune import fine_tune_package
from cellsight.plugin.samples import load_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "io"))
from test_bmz import _core_prediction, foreign_copy, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_sample("nuclei_2d")[:96, :128], load_sample("nuclei_2d_masks")[:96, :128]


def _config(steps, **kw):
    return FineTuneConfig(steps=steps, batch_size=2, patch_size=64, device="cpu",
                          holdout_fraction=0.3, **kw)


@pytest.mark.slow
def test_semantic_package_learns_and_is_written_as_a_new_version(data, tmp_path):
    from cellsight.core.bmz.run import load_package, predict_package

    own = export_package(tiny_model("semantic"), tmp_path / "own.zip")
    parent = foreign_copy(own, tmp_path / "parent.zip")  # torchscript + state dict
    image, masks = data
    classes = np.where(masks > 0, 3, 1).astype(np.uint8)  # nuclei = class 3 of 3
    out = tmp_path / "child.zip"
    result = fine_tune_package(image, classes, _config(60, learning_rate=0.01),
                               package=parent, out=out)
    assert result.metric == "mean IoU" and result.steps_done == 60
    assert result.after > result.before + 0.1, result.message  # it learned the classes
    rdf = yaml.safe_load(zipfile.ZipFile(out).read("rdf.yaml"))
    assert rdf["version"] == "1.1" and list(rdf["weights"]) == ["torchscript"]
    record = rdf["config"]["cellsight"]
    assert record["parent"]["sha256"] == hashlib.sha256(parent.read_bytes()).hexdigest()
    assert record["parent"]["version"] == "1.0"
    assert record["fine_tune"]["steps"] == 60 and record["fine_tune"]["after"] == round(
        result.after, 4)
    assert "fine-tuned by cellsight from other tool" in rdf["version_comment"]
    # still a package from another tool for cellsight, and it runs like bioimageio.core
    child = load_package(out)
    x = np.load(io.BytesIO(zipfile.ZipFile(out).read("test_input.npy")))
    ours = predict_package(child, x[0, 0], device="cpu").output
    theirs = _core_prediction(out, x)[0]
    assert np.abs(ours - theirs).max() <= 1e-3
    stored = np.load(io.BytesIO(zipfile.ZipFile(out).read("test_output_finetuned.npy")))[0]
    assert np.abs(stored - theirs).max() <= 1e-3


@pytest.mark.slow
def test_state_dict_package_needs_trust_and_instances_use_ap(data, tmp_path):
    from cellsight.io.bmz.read import UntrustedCode

    own = export_package(tiny_model("instance"), tmp_path / "own.zip")
    parent = foreign_copy(own, tmp_path / "parent.zip", torchscript=False)
    with pytest.raises(UntrustedCode):
        fine_tune_package(*data, _config(2), package=parent, out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    result = fine_tune_package(*data, _config(3), package=parent, trust=True,
                               out=tmp_path / "child.zip")
    assert result.metric == "AP@0.5" and "right 30%" in result.held_out
    rdf = yaml.safe_load(zipfile.ZipFile(result.package).read("rdf.yaml"))
    assert list(rdf["weights"]) == ["pytorch_state_dict"]
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "UNetArch"


@pytest.mark.slow
def test_an_image_package_cannot_be_fine_tuned(data, tmp_path):
    own = export_package(tiny_model("n2v"), tmp_path / "own.zip")
    parent = foreign_copy(own, tmp_path / "parent.zip")
    with pytest.raises(ValueError, match="class probabilities or foreground"):
        fine_tune_package(*data, _config(2), package=parent)
