import numpy as np
import pytest
import torch
from pydantic import ValidationError

from cellsight.config import UNetConfig
from cellsight.core.nn.unet import UNet, size_divisor


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ndim": 3, "depth": 2, "base_channels": 4, "norm": "group", "upsampling": "resize"},
        {"blurpool": True, "top_skip": False, "norm": "instance", "depth": 2, "base_channels": 8},
        {"ndim": 3, "blurpool": True, "depth": 1, "norm": "none", "base_channels": 4},
    ],
)
def test_unet_keeps_spatial_size(kwargs):
    config = UNetConfig(in_channels=2, out_channels=3, **kwargs)
    net = UNet(config)
    x = torch.randn(2, 2, *([16] * config.ndim))
    out = net(x)
    assert out.shape == (2, 3, *([16] * config.ndim))
    assert torch.isfinite(out).all()


def test_top_skip_changes_architecture():
    with_skip = UNet(UNetConfig(depth=2, base_channels=8))
    without = UNet(UNetConfig(depth=2, base_channels=8, top_skip=False))
    assert with_skip.decoders[-1][0].in_channels == 16
    assert without.decoders[-1][0].in_channels == 8


def test_blurpool_halves_and_is_antialiased():
    net = UNet(UNetConfig(depth=1, base_channels=4, blurpool=True))
    pool = net.pools[0]
    x = torch.zeros(1, 4, 8, 8)
    x[..., ::2] = 1.0  # stripes at the Nyquist frequency
    y = pool(x)
    assert y.shape == (1, 4, 4, 4)
    inner = y[..., :3]  # the last column sees the replicate-padded border
    assert torch.allclose(inner, torch.ones_like(inner))  # max over 2x2, then blur: flat
    dot = torch.zeros(1, 4, 8, 8)
    dot[..., 4, 4] = 1.0
    assert (pool(dot) > 0).sum() > 4 * 1  # the blur spreads a single bright pixel


def test_size_divisor_and_bad_sizes():
    config = UNetConfig(depth=3)
    assert size_divisor(config) == 8
    net = UNet(config)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.zeros(1, 1, 20, 16))
    with pytest.raises(ValueError, match="input channel"):
        net(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="2D U-Net"):
        net(torch.zeros(1, 1, 8, 16, 16))


def test_config_is_strict():
    with pytest.raises(ValidationError):
        UNetConfig(depth=7)
    with pytest.raises(ValidationError):
        UNetConfig(norm="layer")
    with pytest.raises(ValidationError):
        UNetConfig(unknown=1)
    for name in UNetConfig.model_fields:
        title, description = UNetConfig.field_help(name)
        assert title and description


@pytest.mark.slow
def test_unet_learns_a_simple_mapping():
    torch.manual_seed(0)
    net = UNet(UNetConfig(depth=2, base_channels=8, out_channels=1, norm="none"))
    x = torch.rand(4, 1, 16, 16)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(net(x), 1.0 - x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert np.isfinite(losses).all()
