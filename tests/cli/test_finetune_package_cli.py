"""``cellsight train --task instance --from PKG.zip --export NEW.zip``: a new package version."""

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from cellsight.cli import main
from cellsight.io.tiff import write_image, write_labels
from cellsight.plugin.samples import load_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_bmz import foreign_copy, tiny_model  # noqa: E402

# CLI runs that build and load model packages: seconds each, not in the fast tier
pytestmark = pytest.mark.slow

TINY = ("--steps", "2", "--batch-size", "2", "--patch-size", "64", "--device", "cpu",
        "--holdout", "0.3", "--time-limit", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from cellsight.core.bmz.export import export_package

    folder = tmp_path_factory.mktemp("ftpkg")
    image = write_image(folder / "img.tif", load_sample("nuclei_2d")[:96, :128], axes="YX")
    labels = write_labels(folder / "lbl.tif", load_sample("nuclei_2d_masks")[:96, :128],
                          axes="YX")
    pkg = export_package(tiny_model("instance"), folder / "parent.zip", name="tiny parent")
    return image, labels, pkg


def _args(data, out, *extra):
    image, labels, pkg = data
    return ["train", "--task", "instance", "--from", str(pkg), "--images", str(image),
            "--labels", str(labels), "--out", str(out), *TINY, *extra]


def test_fine_tune_a_package_and_export_a_new_version(data, tmp_path, capsys):
    from cellsight.core.bmz.run import load_package
    from cellsight.core.segmentation.instance_model import InstanceModel

    pkg = data[2]
    new = tmp_path / "child.zip"
    assert main(_args(data, tmp_path / "tuned", "--export", str(new))) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps_done"] == 2 and summary["package"] == str(new)
    # the fine-tuned folder starts from the package's own model and remembers it
    meta = InstanceModel.load(tmp_path / "tuned").meta["fine_tune"]
    assert meta["parent_package"]["sha256"] == hashlib.sha256(pkg.read_bytes()).hexdigest()
    rdf = yaml.safe_load(zipfile.ZipFile(new).read("rdf.yaml"))
    parent = rdf["config"]["cellsight"]["parent"]
    assert parent == {"name": "cellsight tiny parent", "version": "1.0", "id": None,
                      "sha256": hashlib.sha256(pkg.read_bytes()).hexdigest()}
    tune = rdf["config"]["cellsight"]["fine_tune"]
    assert tune["steps"] == 2 and tune["ap50_before"] == summary["ap50_before"]
    assert tune["ap50_after"] == summary["ap50_after"] and "right 30%" in tune["held_out"]
    assert rdf["version"] == "1.1"
    assert "cellsight tiny parent 1.0" in rdf["version_comment"]
    readme = zipfile.ZipFile(new).read("README.md").decode()
    assert "## Fine-tuning" in readme and "AP@0.5" in readme
    # the new package runs as cellsight's model again, with the tuned weights
    back = load_package(new)
    tuned = InstanceModel.load(tmp_path / "tuned")
    for key, value in tuned.net.state_dict().items():
        assert (back.net.state_dict()[key] == value).all(), key


def test_bad_export_is_one_line(data, tmp_path, capsys):
    assert main(_args(data, tmp_path / "b", "--export", str(tmp_path / "x.tar"))) == 2
    assert "--export" in capsys.readouterr().err


def test_fine_tune_a_package_from_another_tool(data, tmp_path, capsys):
    image, labels, pkg = data
    other = foreign_copy(pkg, tmp_path / "other.zip", torchscript=False)
    args = ["train", "--task", "instance", "--from", str(other), "--images", str(image),
            "--labels", str(labels), *TINY]
    assert main([*args, "--out", str(tmp_path / "new.zip")]) == 2  # code without --trust
    err = capsys.readouterr().err
    assert "cellsight_unet.py" in err and "sha256" in err and "--trust" in err
    assert main([*args, "--out", str(tmp_path / "folder")]) == 2  # the result is a package
    assert ".zip" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "new.zip"), "--trust", "--export",
                 str(tmp_path / "y.zip")]) == 2
    assert "--export does not apply" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "new.zip"), "--trust"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["metric"] == "AP@0.5" and summary["steps_done"] == 2
    rdf = yaml.safe_load(zipfile.ZipFile(tmp_path / "new.zip").read("rdf.yaml"))
    assert rdf["config"]["cellsight"]["parent"]["sha256"] == hashlib.sha256(
        other.read_bytes()).hexdigest()
    code = main(["train", "--task", "semantic", "--from", str(other), "--images", str(image),
                 "--labels", str(labels), "--out", str(tmp_path / "s.zip"), "--trust"])
    assert code == 2 and "use --task instance" in capsys.readouterr().err
