import json
import subprocess
import sys

import pytest

from cellsight import __version__
from cellsight.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "info" in capsys.readouterr().out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cellsight"] == __version__
    assert info["auto_device"] in {"cpu", "cuda", "mps"}


@pytest.mark.slow
def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "cellsight", "--version"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


@pytest.mark.slow
def test_console_script_installed():
    from pathlib import Path

    exe = str(Path(sys.executable).with_name("cellsight"))
    out = subprocess.run([exe, "info"], capture_output=True, text=True)
    assert out.returncode == 0 and "auto_device" in out.stdout


@pytest.mark.slow
def test_pipeline_writes_output_folder(tmp_path, capsys):
    assert main(["pipeline", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (tmp_path / "out" / "overview.png").stat().st_size > 1000
    for step in summary["steps"]:
        assert (tmp_path / "out" / step["file"]).exists()
    assert [s["step"] for s in summary["steps"]][-1] == "track"
    err = capsys.readouterr().err
    assert "tracks" in err and "divisions" in err and "PSNR" in err  # the summary lines
