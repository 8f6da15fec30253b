import pytest
import torch

from cellsight.core.nn import device as dev


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(dev, "_has_cuda", lambda t: True)
    monkeypatch.setattr(dev, "_has_mps", lambda t: True)
    assert dev.select_device("auto").type == "cuda"
    monkeypatch.setattr(dev, "_has_cuda", lambda t: False)
    assert dev.select_device("auto").type == "mps"
    monkeypatch.setattr(dev, "_has_mps", lambda t: False)
    assert dev.select_device("auto").type == "cpu"


def test_explicit_override():
    assert dev.select_device("cpu") == torch.device("cpu")
    assert dev.select_device("CPU").type == "cpu"


def test_unavailable_or_unknown_device_errors(monkeypatch):
    monkeypatch.setattr(dev, "_has_cuda", lambda t: False)
    monkeypatch.setattr(dev, "_has_mps", lambda t: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        dev.select_device("cuda")
    with pytest.raises(ValueError, match="MPS"):
        dev.select_device("mps")
    with pytest.raises(ValueError, match="Unknown device"):
        dev.select_device("tpu")


def test_summary_reports_auto_device():
    info = dev.device_summary()
    assert info["auto_device"] in {"cpu", "cuda", "mps"}
    assert info["torch"] == torch.__version__
