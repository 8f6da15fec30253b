import numpy as np
import pytest

from cellsight.plugin import samples


def test_every_sample_loads_with_its_hash():
    for key in samples.SAMPLES:
        data = samples.load_sample(key)
        assert data.ndim >= 2 and data.size > 0


def test_sample_functions_return_layer_data():
    (img, meta, kind), (mask, mask_meta, mask_kind) = samples.nuclei_2d()
    assert kind == "image" and mask_kind == "labels"
    assert img.shape == mask.shape == (512, 512)
    assert meta["name"] == "DSB2018 nuclei"
    assert len(np.unique(mask)) - 1 == 125
    (movie, meta, kind), = samples.hela_timelapse()
    assert movie.shape == (20, 256, 256) and kind == "image"
    # the HeLa crop carries its axes and real pixel size (CTC Fluo-N2DL-HeLa: 0.645 um)
    assert meta["metadata"]["axes"] == "TYX" and meta["axis_labels"] == ["t", "y", "x"]
    assert meta["scale"] == [1.0, 0.645, 0.645]
    assert meta["units"] == ["pixel", "micrometer", "micrometer"]
    (noisy, meta, kind), = samples.w2s_noisy()
    assert noisy.dtype == np.uint8


def test_sample_data_small_and_documented(repo_root):
    folder = repo_root / "sample_data"
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 10 * 1024 * 1024
    provenance = (folder / "PROVENANCE.md").read_text()
    for sample in samples.SAMPLES.values():
        assert sample.filename in provenance


def test_corrupted_sample_is_detected(tmp_path, monkeypatch):
    (tmp_path / "dsb2018_nuclei.tif").write_bytes(b"corrupt")
    monkeypatch.setattr(samples, "sample_dir", lambda: tmp_path)
    samples.sample_path.cache_clear()
    try:
        with pytest.raises(ValueError, match="corrupted"):
            samples.sample_path("nuclei_2d")
    finally:
        samples.sample_path.cache_clear()
