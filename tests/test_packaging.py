"""The plugin as users get it: manifest, discovery, and the built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


def test_manifest_validates():
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "cellsight"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_plugin_manager_discovers_plugin_and_reader(tmp_path):
    from npe2 import PluginManager

    pm = PluginManager()
    pm.discover()
    manifest = pm.get_manifest("cellsight")
    assert {s.key for s in manifest.contributions.sample_data} >= {
        "nuclei_2d", "hela_timelapse", "w2s_noisy"}
    readers = [r.command for r in pm.iter_compatible_readers([str(tmp_path / "x.tif")])]
    assert "cellsight.get_tiff_reader" in readers


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, repo_root) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
         str(repo_root)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("cellsight-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_ships_manifest_and_samples(wheel, repo_root):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        manifest = zf.read("cellsight/napari.yaml").decode()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "cellsight = cellsight:napari.yaml" in zf.read(entry_points).decode()
    assert manifest == (repo_root / "napari.yaml").read_text()
    for sample in (repo_root / "sample_data").iterdir():
        assert f"cellsight/sample_data/{sample.name}" in names
    for name in ("config.yaml", "weights.pt", "meta.json"):  # built-in model, no download
        assert f"cellsight/models/nuclei/{name}" in names
    assert not any(n.startswith("tests/") for n in names)
