import json

import numpy as np
import pytest

import cellsight.core.curation.finetune as ft
from cellsight.cli import main
from cellsight.config.finetune import FineTuneConfig
from cellsight.core.segmentation.instance_model import InstanceModel
from cellsight.io.tiff import write_image, write_labels
from cellsight.plugin.samples import load_sample


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ft")
    image = load_sample("nuclei_2d")[:96, :128]
    truth = load_sample("nuclei_2d_masks")[:96, :128]
    return (write_image(folder / "img.tif", image, axes="YX"),
            write_labels(folder / "lbl.tif", truth, axes="YX"))


def _args(files, out, *extra):
    image, labels = files
    return ["train", "--task", "instance", "--from", "nuclei", "--images", str(image),
            "--labels", str(labels), "--out", str(out), *extra]


@pytest.mark.slow
def test_from_without_options_uses_the_shared_fine_tuning_defaults(files, tmp_path,
                                                                   monkeypatch, capsys):
    seen = {}
    real = ft.fine_tune

    def spy(images, labels, config, *, base, **kwargs):
        seen["config"], seen["base"] = config, base
        return real(images, labels, config.model_copy(update={"steps": 1}), base=base, **kwargs)

    monkeypatch.setattr(ft, "fine_tune", spy)
    assert main(_args(files, tmp_path / "m")) == 0
    assert seen == {"config": FineTuneConfig(), "base": "nuclei"}
    assert json.loads(capsys.readouterr().out)["steps_done"] == 1


@pytest.mark.slow
def test_fine_tune_reports_held_out_ap_and_never_overwrites(files, tmp_path, capsys):
    out = tmp_path / "tuned"
    tiny = ("--steps", "2", "--batch-size", "2", "--patch-size", "64", "--device", "cpu",
            "--holdout", "0.3", "--time-limit", "1")
    assert main(_args(files, out, *tiny)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps_done"] == 2 and "right 30%" in summary["held_out"]
    assert 0 <= summary["ap50_before"] <= 1 and 0 <= summary["ap50_after"] <= 1
    assert summary["better"] == (summary["ap50_after"] >= summary["ap50_before"])
    meta = InstanceModel.load(out).meta["fine_tune"]
    assert meta["config"]["holdout_fraction"] == 0.3 and meta["from"] == "nuclei"
    before = (out / "weights.pt").read_bytes()
    assert main(_args(files, out, *tiny)) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (out / "weights.pt").read_bytes() == before
    assert main(_args(files, tmp_path / "x", "--val-fraction", "0.2")) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert not np.any([p.name == "x" for p in tmp_path.iterdir()])
