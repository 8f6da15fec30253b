"""Training saves its model folder as a unit and never pairs it with another run's last.pt."""

from cellsight.config.semantic import SemanticConfig
from cellsight.config.unet import UNetConfig
from cellsight.core.nn.unet import UNet
from cellsight.core.segmentation.semantic import SemanticModel, _Checkpointer
from cellsight.io.model_folder import load_checkpoint, load_model_folder, save_checkpoint


def test_checkpoints_drop_an_earlier_runs_last_pt(tmp_path):
    unet = UNetConfig(depth=1, base_channels=4)
    folder = tmp_path / "m"
    SemanticModel(SemanticConfig(unet=unet), UNet(unet)).save(folder)
    save_checkpoint(folder, {"step": 999})  # from an earlier run
    state = UNet(unet).state_dict()
    save = _Checkpointer(folder, SemanticConfig(unet=unet), {})
    save("best", {"model": state, "step": 10, "score": 0.5})
    assert load_checkpoint(folder) is None and not save.wrote_last
    save("last", {"model": state, "step": 10})
    save("best", {"model": state, "step": 20, "score": 0.4})
    assert load_checkpoint(folder)["step"] == 10
    assert load_model_folder(folder).meta["metrics"]["best_step"] == 20
    SemanticModel(SemanticConfig(unet=unet), UNet(unet)).save(folder, keep_last=save.wrote_last)
    assert load_checkpoint(folder)["step"] == 10  # this run's checkpoint stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
