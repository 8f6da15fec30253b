import json

import pytest
import torch
import yaml

from cellsight.config.unet import UNetConfig
from cellsight.core.nn.unet import UNet
from cellsight.io.model_folder import (
    ModelFolderError,
    load_checkpoint,
    load_model_folder,
    save_checkpoint,
    save_model_folder,
)


def test_round_trip(tmp_path):
    net = UNet(UNetConfig(depth=1, base_channels=4))
    config = {"task": "semantic", "unet": net.config.model_dump()}
    save_model_folder(tmp_path / "m", config, net.state_dict(), {"metrics": {"iou": 0.9}})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.yaml",
        "meta.json",
        "weights.pt",
    ]
    found = load_model_folder(tmp_path / "m", task="semantic")
    assert found.config == config and found.task == "semantic"
    assert found.meta["metrics"] == {"iou": 0.9} and "created_at" in found.meta
    for k, v in net.state_dict().items():
        assert torch.equal(found.state_dict[k], v)
    assert yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["task"] == "semantic"
    assert load_checkpoint(tmp_path / "m") is None
    save_checkpoint(tmp_path / "m", {"model": net.state_dict(), "step": 7})
    assert load_checkpoint(tmp_path / "m")["step"] == 7


def test_clear_errors(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="no config.yaml"):
        load_model_folder(tmp_path / "empty")
    net = UNet(UNetConfig(depth=1, base_channels=4))
    save_model_folder(tmp_path / "n2v", {"task": "n2v"}, net.state_dict())
    with pytest.raises(ModelFolderError, match="'n2v' model; a 'semantic'"):
        load_model_folder(tmp_path / "n2v", task="semantic")
    (tmp_path / "n2v" / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFolderError, match="Cannot load"):
        load_model_folder(tmp_path / "n2v")
    with pytest.raises(ValueError, match="task"):
        save_model_folder(tmp_path / "x", {}, net.state_dict())


def test_pickled_objects_are_refused(tmp_path):
    folder = tmp_path / "m"
    save_model_folder(folder, {"task": "semantic"}, {"w": torch.zeros(2)})
    torch.save({"w": torch.zeros(2), "evil": object()}, folder / "weights.pt")
    with pytest.raises(ModelFolderError, match="Cannot load"):
        load_model_folder(folder)
    assert json.loads((folder / "meta.json").read_text())["task"] == "semantic"
