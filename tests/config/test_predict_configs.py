import pytest
from pydantic import ValidationError

from cellsight.config.n2v import DenoisePredictConfig, N2VConfig
from cellsight.config.semantic import SemanticPredictConfig

CONFIGS = (SemanticPredictConfig, DenoisePredictConfig)


@pytest.mark.parametrize("cls", CONFIGS)
def test_defaults_titles_and_round_trip(cls):
    for name, info in cls.model_fields.items():
        assert info.title and info.description, name
    default = cls()
    assert (default.axes, default.tile_size, default.batch_size, default.device) == (
        "",
        0,
        4,
        "auto",
    )
    config = cls(axes="tyx", tile_size=256, batch_size=2, device="cpu")
    assert config.axes == "TYX"  # letters are stored upper-case
    assert cls.model_validate(config.model_dump()) == config


def test_semantic_defaults():
    config = SemanticPredictConfig()
    assert not config.timeseries and not config.test_time_augmentation
    assert config.overlap == 0  # automatic


@pytest.mark.parametrize(
    "cls, axes, named",
    [
        (SemanticPredictConfig, "TQYX", "Q"),
        (SemanticPredictConfig, "SYX", "S"),
        (DenoisePredictConfig, "TBYX", "B"),
        (SemanticPredictConfig, "YYX", "Y"),
    ],
)
def test_bad_axis_letters_are_named(cls, axes, named):
    with pytest.raises(ValueError, match=rf"axes '{axes}': letter\(s\) {named} "):
        cls(axes=axes)


def test_axes_need_y_and_x():
    with pytest.raises(ValueError, match="must contain Y and X"):
        SemanticPredictConfig(axes="ZY")


def test_denoise_accepts_the_sample_and_channel_letters_n2v_reads():
    assert DenoisePredictConfig(axes="QSYX").axes == "QSYX"


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize(
    "bad",
    [{"tile_size": 8}, {"tile_size": 5000}, {"batch_size": 0}, {"device": "tpu"}, {"unknown": 1}],
)
def test_bad_values_are_rejected(cls, bad):
    with pytest.raises(ValidationError):
        cls(**bad)


def test_n2v_config_has_a_device_and_old_saved_configs_still_load():
    assert N2VConfig().device == "auto"
    old = N2VConfig().model_dump()
    del old["device"]  # written before the field existed
    assert N2VConfig.model_validate(old).device == "auto"
    with pytest.raises(ValidationError):
        N2VConfig(device="tpu")
