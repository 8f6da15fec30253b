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
    with pytest.raises(ModelFolderError, match="not a cellsight weights file: it is damaged"):
        load_model_folder(tmp_path / "n2v")
    with pytest.raises(ValueError, match="task"):
        save_model_folder(tmp_path / "x", {}, net.state_dict())


def test_pickled_objects_are_refused(tmp_path):
    folder = tmp_path / "m"
    save_model_folder(folder, {"task": "semantic"}, {"w": torch.zeros(2)})
    torch.save({"w": torch.zeros(2), "evil": object()}, folder / "weights.pt")
    with pytest.raises(ModelFolderError, match="holds Python objects") as refused:
        load_model_folder(folder)
    assert "weights_only" not in str(refused.value)  # never advise running the file's code
    assert json.loads((folder / "meta.json").read_text())["task"] == "semantic"


def _siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir())


def _save(folder, value, **kwargs):
    return save_model_folder(folder, {"task": "semantic", "v": value},
                             {"w": torch.full((2,), float(value))}, **kwargs)


def test_a_failed_save_keeps_the_old_model_whole(tmp_path, monkeypatch):
    import cellsight.io.model_folder as mf

    folder = tmp_path / "m"
    _save(folder, 1)
    save_checkpoint(folder, {"step": 3})

    def crash(obj, path):
        path.write_bytes(b"half a tensor")
        raise KeyboardInterrupt  # Ctrl-C between config.yaml and weights.pt

    monkeypatch.setattr(mf, "_torch_save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(folder, 2)
    found = load_model_folder(folder, task="semantic")
    assert found.config["v"] == 1 and float(found.state_dict["w"][0]) == 1.0
    assert load_checkpoint(folder)["step"] == 3
    assert _siblings(folder) == ["m"]  # no temporary folder left


def test_a_new_save_replaces_the_model_and_keeps_other_entries(tmp_path):
    folder = tmp_path / "m"
    _save(folder, 1)
    save_checkpoint(folder, {"step": 3})
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "note.txt").write_text("mine")
    _save(folder, 2, keep_last=True)
    assert load_model_folder(folder).config["v"] == 2 and load_checkpoint(folder)["step"] == 3
    _save(folder, 3)  # another model: the old last.pt does not belong to it
    assert load_model_folder(folder).config["v"] == 3 and load_checkpoint(folder) is None
    assert (folder / "checkpoints" / "note.txt").read_text() == "mine"
    assert _siblings(folder) == ["m"]


def test_an_interrupted_checkpoint_never_replaces_last_pt(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    save_checkpoint(folder, {"step": 1})
    (folder / ".last.pt.deadbeef.part").write_bytes(b"")  # left by a killed run
    real = torch.save

    def killed(obj, path, *args, **kwargs):
        real(obj, path, *args, **kwargs)
        with open(path, "r+b") as f:
            f.truncate(10)  # half written when the signal came
        raise SystemExit(143)

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(SystemExit):
        save_checkpoint(folder, {"step": 2})
    assert load_checkpoint(folder)["step"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]


def _disk_full(obj, path):
    raise OSError(28, "No space left on device")


def test_semantic_and_n2v_models_save_as_a_unit(tmp_path, monkeypatch):
    import cellsight.io.model_folder as mf
    from cellsight.config.n2v import N2VConfig
    from cellsight.config.semantic import SemanticConfig
    from cellsight.core.denoise.model import N2VModel
    from cellsight.core.segmentation.semantic import SemanticModel

    unet = UNetConfig(depth=1, base_channels=4)
    semantic = SemanticModel(SemanticConfig(unet=unet), UNet(unet))
    n2v = N2VModel(UNet(unet), N2VConfig(), mean=(0.0,), std=(1.0,))
    for model in (semantic, n2v):
        folder = tmp_path / type(model).__name__
        model.save(folder)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        with monkeypatch.context() as m:
            m.setattr(mf, "_torch_save", _disk_full)
            with pytest.raises(OSError):
                model.save(folder)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert type(model).load(folder).config == model.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["N2VModel", "SemanticModel"]


@pytest.mark.slow
def test_sigterm_while_saving_checkpoints_leaves_a_loadable_last_pt(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, torch\n"
        "from cellsight.io.model_folder import save_checkpoint\n"
        "state = {'w': torch.randn(4_000_000)}\n"
        "step = 0\n"
        "while True:\n"
        "    step += 1\n"
        "    save_checkpoint(sys.argv[1], {'model': state, 'step': step})\n"
        "    print(step, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert load_checkpoint(tmp_path)["step"] >= 1  # never a 0-byte or partial last.pt
    save_checkpoint(tmp_path, {"step": -1})  # the next save clears what the kill left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
