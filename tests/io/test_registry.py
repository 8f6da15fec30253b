import shutil

import pytest

from cellsight.io import registry


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    return tmp_path


def test_cache_dir_follows_env_var(cache):
    assert registry.cache_dir() == cache


def test_cached_file_is_used_offline(cache, shared_data, monkeypatch):
    name = "Fluo_Hela_02_ERR_SEG.tif"
    shutil.copy(shared_data / "timelapse_unlabelled" / name, cache / name)
    # any download attempt would fail loudly
    monkeypatch.setitem(registry.REGISTRY, name, (registry.REGISTRY[name][0], "http://127.0.0.1:9/x"))
    assert registry.fetch(name) == cache / name


def test_offline_missing_file_has_clear_message(cache, monkeypatch):
    name = "Fluo_Hela_02_ERR_SEG.tif"
    monkeypatch.setitem(registry.REGISTRY, name, (registry.REGISTRY[name][0], "http://127.0.0.1:9/x"))
    with pytest.raises(registry.DataUnavailableError) as err:
        registry.fetch(name)
    message = str(err.value)
    assert name in message and str(cache / name) in message and registry.ENV_VAR in message


def test_wrong_hash_is_rejected(cache, shared_data, monkeypatch):
    name = "Fluo_Hela_02_ERR_SEG.tif"
    (cache / name).write_bytes(b"not the right file")
    monkeypatch.setitem(registry.REGISTRY, name, (registry.REGISTRY[name][0], "http://127.0.0.1:9/x"))
    with pytest.raises((ValueError, registry.DataUnavailableError)):
        registry.fetch(name)


def test_unknown_name():
    with pytest.raises(KeyError, match="not a registered"):
        registry.fetch("nothing.tif")


def test_registry_hashes_match_shared_copies(shared_data):
    import hashlib

    for name, (sha, url) in registry.REGISTRY.items():
        assert url.startswith("https://")
        local = shared_data / "timelapse_unlabelled" / name
        assert hashlib.sha256(local.read_bytes()).hexdigest() == sha
