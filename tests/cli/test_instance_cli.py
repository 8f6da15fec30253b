import json

import numpy as np
import pytest

from cellsight.cli import main
from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.io.tiff import read_image, write_image, write_labels
from cellsight.plugin.samples import load_sample


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    image = load_sample("nuclei_2d")
    truth = load_sample("nuclei_2d_masks")
    paths = {}
    for name, sl in (("a.tif", np.s_[:160, :160]), ("b.tif", np.s_[200:360, 200:360])):
        paths[name] = write_image(folder / name, image[sl], axes="YX")
        write_labels(folder / f"lbl_{name}", truth[sl], axes="YX")
    stack = np.stack([image[:128, :128], image[128:256, :128]])
    paths["movie.tif"] = write_image(folder / "movie.tif", stack, axes="TYX")
    return folder, paths, truth


def test_segment_one_image_with_builtin_model(crops, tmp_path, capsys):
    folder, paths, truth = crops
    out = tmp_path / "a_labels.tif"
    code = main(["segment", "--model", "nuclei", "--diameter", "24", "--device", "cpu",
                 "--out", str(out), str(paths["a.tif"])])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    labels = read_image(out).data
    assert labels.shape == (160, 160) and summary["objects"] == int(labels.max()) > 10
    assert match_instances(truth[:160, :160], labels).ap > 0.6



def test_split_by_shape_option_reaches_the_watershed():
    """The built-in model splits by shape; --no-split-by-shape turns it off, and back on."""
    import argparse

    from cellsight.cli._instance import instance_settings
    from cellsight.core.segmentation.instance_model import load_builtin

    model = load_builtin("nuclei")
    assert model.config.postprocessing.split_by_shape
    base = dict(diameter=None, tile_size=None, device="cpu", tta=False, seed_threshold=None,
                mask_threshold=None, min_size=None)
    for given, expected in ((None, True), (False, False), (True, True)):
        args = argparse.Namespace(**base, split_by_shape=given)
        _, post = instance_settings(args, model, "2d")
        assert post.split_by_shape is expected

@pytest.mark.slow
def test_segment_with_test_time_augmentation(crops, tmp_path, capsys):
    folder, paths, truth = crops
    outs = {}
    for flag in ([], ["--tta"]):
        out = tmp_path / f"tta{len(flag)}.tif"
        assert main(["segment", "--model", "nuclei", "--diameter", "24", "--device", "cpu",
                     *flag, "--out", str(out), str(paths["b.tif"])]) == 0
        outs[len(flag)] = read_image(out).data
    capsys.readouterr()
    plain, tta = outs[0], outs[1]
    assert tta.shape == plain.shape == (160, 160)
    assert (tta > 0).sum() != (plain > 0).sum()  # the averaged maps differ
    assert match_instances(truth[200:360, 200:360], tta).ap > 0.6


@pytest.mark.slow
def test_segment_several_images_into_a_folder_and_a_t_stack(crops, tmp_path, capsys):
    folder, paths, _ = crops
    out = tmp_path / "labels"
    code = main(["segment", "--model", "nuclei", "--diameter", "24", "--device", "cpu",
                 "--out", str(out), str(paths["a.tif"]), str(paths["b.tif"]),
                 str(paths["movie.tif"])])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif", "movie.tif",
                                                     "summary.csv"]
    assert read_image(out / "b.tif").data.shape == (160, 160)
    movie = read_image(out / "movie.tif")
    assert movie.data.shape == (2, 128, 128) and movie.axes == "TYX"
    assert all(frame.max() > 5 for frame in movie.data)
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == summary["done"] == 3 and summary["error"] == 0


def test_segment_refuses_clashing_names(crops, tmp_path, capsys):
    folder, paths, _ = crops
    other = tmp_path / "x"
    other.mkdir()
    write_image(other / "a.tif", np.zeros((32, 32), np.uint8))
    code = main(["segment", "--model", "nuclei", "--out", str(tmp_path / "o"),
                 str(paths["a.tif"]), str(other / "a.tif")])
    assert code == 2 and "share a file name" in capsys.readouterr().err


@pytest.mark.slow
def test_train_instance_from_builtin_model(crops, tmp_path, capsys):
    folder, paths, _ = crops
    mask = np.ones((160, 160), np.uint8)
    mask[:, 120:] = 0
    write_image(tmp_path / "ann.tif", mask)
    out = tmp_path / "tuned"
    code = main(["train", "--task", "instance", "--from", "nuclei", "--steps", "2",
                 "--batch-size", "2", "--patch-size", "64", "--device", "cpu",
                 "--images", str(paths["a.tif"]), "--labels", str(folder / "lbl_a.tif"),
                 "--annotated", str(tmp_path / "ann.tif"), "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "instance" and summary["steps_done"] == 2
    model = InstanceModel.load(out)
    builtin = InstanceModel.load("nuclei")
    assert model.config.unet == builtin.config.unet
    assert model.config.diameter == builtin.config.diameter
    code = main(["segment", "--model", str(out), "--diameter", "24", "--out",
                 str(tmp_path / "seg.tif"), str(paths["b.tif"])])
    assert code == 0 and read_image(tmp_path / "seg.tif").data.shape == (160, 160)


def test_train_instance_rejects_semantic_only_options(crops, tmp_path, capsys):
    folder, paths, _ = crops
    code = main(["train", "--task", "instance", "--resume", "--images", str(paths["a.tif"]),
                 "--labels", str(folder / "lbl_a.tif"), "--out", str(tmp_path / "m")])
    assert code == 2 and "--resume" in capsys.readouterr().err
