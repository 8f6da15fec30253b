import pytest
from pydantic import ValidationError

from cellsight.config.n2v import N2VConfig


def test_every_field_has_title_description_and_round_trips():
    for name, info in N2VConfig.model_fields.items():
        assert info.title and info.description, name
    config = N2VConfig(steps=10, variant="n2v2")
    assert N2VConfig.model_validate(config.model_dump()) == config


@pytest.mark.parametrize(
    "bad",
    [{"steps": 0}, {"variant": "n2v3"}, {"masked_fraction": 0.0}, {"patch_size": 4},
     {"val_fraction": 0.9}, {"unknown": 1}],
)
def test_bad_values_are_rejected(bad):
    with pytest.raises(ValidationError):
        N2VConfig(**bad)
