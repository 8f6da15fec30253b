"""Outputs are checked before any work: never an input, never replaced without --overwrite,
writable, and named after the format written (issue 18). Every refusal exits 2 with one line
naming the problem, and leaves every file as it was (hashes before and after)."""

import argparse
import hashlib
import os

import numpy as np
import pytest

from cellsight.cli import main
from cellsight.config.semantic import SemanticConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.nn.unet import UNet
from cellsight.core.segmentation.semantic import SemanticModel
from cellsight.io.tiff import write_image, write_labels


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace: an image, labels, a masks stack and folder, a model, earlier outputs."""
    rng = np.random.default_rng(0)
    write_image(tmp_path / "img.tif", rng.random((32, 32)).astype(np.float32), axes="YX")
    labels = np.zeros((32, 32), np.uint8)
    labels[8:16, 8:16] = 1
    write_labels(tmp_path / "lbl.tif", labels)
    movie = np.zeros((3, 24, 24), np.uint16)
    for t in range(3):
        movie[t, 5:9, 5 + t:9 + t] = 1
    write_labels(tmp_path / "masks.tif", movie, axes="TYX")
    for t in range(3):
        write_labels(tmp_path / "frames" / f"mask{t:03d}.tif", movie[t])
    unet = UNetConfig(depth=1, base_channels=4)
    SemanticModel(SemanticConfig(unet=unet), UNet(unet)).save(tmp_path / "model")
    write_labels(tmp_path / "old.tif", labels)  # an earlier result
    write_labels(tmp_path / "frozen.tif", labels)
    os.chmod(tmp_path / "frozen.tif", 0o444)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("years of work")
    (tmp_path / "dir.tif").mkdir()
    (tmp_path / "raw").mkdir()
    write_image(tmp_path / "raw" / "a.tif", rng.random((16, 16)).astype(np.float32))
    write_image(tmp_path / "raw" / "b.tif", rng.random((16, 16)).astype(np.float32))
    os.symlink(tmp_path / "img.tif", tmp_path / "link.tif")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


SEG = ["segment", "--model", "nuclei"]
TRAIN = ["train", "--task", "semantic", "--images", "img.tif", "--labels", "lbl.tif",
         "--steps", "2"]

# (case, argv, words the one-line message must hold)
REFUSED = [
    # outputs that are inputs
    ("segment out is the image", [*SEG, "--out", "img.tif", "img.tif"], "is the input"),
    ("segment out via ./ and ..", [*SEG, "--out", "./raw/../img.tif", "img.tif"],
     "is the input"),
    ("segment out is a symlink to the image", [*SEG, "--out", "link.tif", "img.tif"],
     "is the input"),
    ("segment batch into the input folder", [*SEG, "--out", "raw", "raw"], "input"),
    ("segment batch into a folder of inputs", [*SEG, "--out", "raw", "raw/a.tif", "raw/b.tif"],
     "holds the input"),
    ("segment probabilities onto the image",
     ["segment", "--mode", "semantic", "--model", "model", "--out", "new.tif",
      "--probabilities", "img.tif", "img.tif"], "is the input"),
    ("segment probabilities = out",
     ["segment", "--mode", "semantic", "--model", "model", "--out", "new.tif",
      "--probabilities", "new.tif", "img.tif"], "overlap"),
    ("denoise out is the image", ["denoise", "--steps", "2", "--out", "img.tif", "img.tif"],
     "is the input"),
    ("denoise batch into the input folder",
     ["denoise", "--model", "model", "--out", "raw", "raw/a.tif", "raw/b.tif"], "holds the input"),
    ("denoise save-model holds the image",
     ["denoise", "--steps", "2", "--out", "new.tif", "--save-model", ".", "img.tif"],
     "holds the input"),
    ("track out is the masks folder", ["track", "frames", "--out", "frames"], "is the input"),
    ("track ctc folder holds the masks", ["track", "masks.tif", "--out", "."],
     "holds the input"),
    ("track out is the image", ["track", "masks.tif", "--image", "img.tif", "--out", "img.tif",
                                "--format", "csv"], "is the input"),
    ("train out is an image", [*TRAIN, "--out", "img.tif"], "is the input"),
    ("train out holds the images", [*TRAIN, "--out", "."], "holds the input"),
    ("train out is the model it starts from", [*TRAIN, "--from", "model", "--out", "model"],
     "is the input"),
    ("convert out is the input", ["convert", "masks.tif", "--out", "masks.tif"], ".zarr"),
    # existing outputs are kept unless --overwrite
    ("segment out exists", [*SEG, "--out", "old.tif", "img.tif"], "--overwrite"),
    ("segment read-only out", [*SEG, "--out", "frozen.tif", "--overwrite", "img.tif"],
     "read-only"),
    ("denoise out exists", ["denoise", "--steps", "2", "--out", "old.tif", "img.tif"],
     "--overwrite"),
    ("denoise save-model exists",
     ["denoise", "--steps", "2", "--out", "new.tif", "--save-model", "model", "img.tif"],
     "--overwrite"),
    ("train out is a model", [*TRAIN, "--out", "model"], "--overwrite"),
    ("train out holds other files", [*TRAIN, "--out", "mine", "--overwrite"], "thesis.txt"),
    ("track ctc out holds other files", ["track", "masks.tif", "--out", "mine", "--overwrite"],
     "thesis.txt"),
    ("track ctc out holds other files, no --overwrite", ["track", "masks.tif", "--out", "mine"],
     "thesis.txt"),
    ("segment out is a folder", [*SEG, "--out", "dir.tif", "--overwrite", "img.tif"],
     "is a folder"),
    ("segment batch out is a file", [*SEG, "--out", "old.tif", "raw"], "is a file"),
    # not writable: checked before the work
    ("train out under /proc", [*TRAIN, "--out", "/proc/cellsight-test/m"],
     "cannot be written"),
    ("segment out under a file", [*SEG, "--out", "old.tif/x.tif", "img.tif"],
     "cannot be written"),
    ("track out under /proc", ["track", "masks.tif", "--out", "/proc/cellsight-test/t"],
     "cannot be written"),
    ("convert out under /proc", ["convert", "img.tif", "--out", "/proc/cellsight-x/a.zarr"],
     "cannot be written"),
    # the name says the format
    ("segment out .png", [*SEG, "--out", "labels.png", "img.tif"], ".tif"),
    ("segment probabilities .png",
     ["segment", "--mode", "semantic", "--model", "model", "--out", "new.tif",
      "--probabilities", "p.png", "img.tif"], ".tif"),
    ("denoise out .jpg", ["denoise", "--steps", "2", "--out", "clean.jpg", "img.tif"], ".tif"),
    ("convert out .tif", ["convert", "img.tif", "--out", "img2.tif"], ".zarr"),
]


@pytest.fixture
def no_work(monkeypatch):
    """Make every long job fail loudly: the checks must come first."""
    import cellsight.core.denoise as denoise
    import cellsight.core.segmentation.instance_model as instance
    import cellsight.core.segmentation.semantic as semantic
    import cellsight.core.tracking as tracking
    import cellsight.io.omezarr as omezarr

    def started(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    for module, name in ((semantic, "train_semantic"), (semantic, "predict_semantic"),
                         (instance, "train_instances"), (instance, "predict_instance_maps"),
                         (denoise, "train_n2v"), (denoise, "denoise"), (tracking, "track"),
                         (omezarr, "open_lazy")):
        monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize(("argv", "words"), [c[1:] for c in REFUSED],
                         ids=[c[0] for c in REFUSED])
def test_refused_before_any_work(ws, capsys, no_work, argv, words):
    before = _hashes(ws)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cellsight: error: ") and err.count("\n") == 1, err
    assert words in err, err
    assert _hashes(ws) == before  # no input or existing output changed, nothing new
    assert sorted(p.name for p in ws.iterdir() if p.name.startswith(".")) == []


def test_track_overwrite_replaces_only_an_earlier_result(ws, capsys):
    assert main(["track", "masks.tif", "--out", "res", "--solver", "greedy"]) == 0
    assert main(["track", "masks.tif", "--out", "res", "--format", "csv",
                 "--solver", "greedy"]) == 0
    first = _hashes(ws / "res")
    assert main(["track", "masks.tif", "--out", "res", "--solver", "greedy"]) == 2
    assert "--overwrite" in capsys.readouterr().err and _hashes(ws / "res") == first
    assert main(["track", "masks.tif", "--out", "res", "--solver", "greedy",
                 "--overwrite"]) == 0
    assert sorted(p.name for p in (ws / "res").iterdir()) == [
        "mask000.tif", "mask001.tif", "mask002.tif", "res_track.txt", "tracks.csv"]
    # csv beside the input: the folder is not replaced, so it may hold the input
    assert main(["track", "masks.tif", "--out", ".", "--format", "csv",
                 "--solver", "greedy"]) == 0
    assert (ws / "tracks.csv").is_file()


def test_convert_never_writes_into_its_input(ws, capsys):
    assert main(["convert", "img.tif", "--out", "a.zarr"]) == 0
    before = _hashes(ws)
    assert main(["convert", "a.zarr", "--out", "a.zarr", "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["convert", "a.zarr", "--out", "a.zarr/0/b.zarr"]) == 2
    assert "lies inside the input" in capsys.readouterr().err
    assert _hashes(ws) == before


def test_train_resume_in_place_is_allowed(ws):
    from cellsight.cli.train import check_out

    args = argparse.Namespace(images=["img.tif"], labels=["lbl.tif"], annotated=None,
                              config=None, init="model", resume=True, out="./model",
                              overwrite=False, task="semantic")
    check_out(args)  # continuing a model in its own folder is not "output = input"


def test_write_image_refuses_other_formats(tmp_path):
    with pytest.raises(ValueError, match=r"\.tif or \.tiff"):
        write_image(tmp_path / "labels.png", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []
