"""How the command reports errors: a user's mistake is one line and exit code 2; anything
unexpected is a short line and exit code 1, the traceback only with ``--debug``."""

import errno

import numpy as np
import pytest

import cellsight.cli.track as track_cli
from cellsight.cli import main, one_line
from cellsight.io.tiff import write_labels


@pytest.fixture
def masks(tmp_path):
    movie = np.zeros((3, 16, 16), np.uint16)
    movie[:, 4:8, 4:8] = 1
    write_labels(tmp_path / "masks.tif", movie, axes="TYX")
    return tmp_path / "masks.tif"


def _broken(exc):
    def run(*args):
        raise exc
    return run


def test_internal_error_is_short_with_exit_1(masks, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(track_cli, "read_stack", _broken(ZeroDivisionError("bug\nmore")))
    assert main(["track", str(masks), "--out", str(tmp_path / "t")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("cellsight: internal error: ZeroDivisionError: bug more")
    assert "--debug" in err


def test_debug_shows_the_traceback(masks, tmp_path, monkeypatch):
    monkeypatch.setattr(track_cli, "read_stack", _broken(ZeroDivisionError("bug")))
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "track", str(masks), "--out", str(tmp_path / "t")])
    monkeypatch.setattr(track_cli, "read_stack", _broken(ValueError("user")))
    with pytest.raises(ValueError):  # user errors too: the whole story for a bug report
        main(["--debug", "track", str(masks), "--out", str(tmp_path / "t")])


@pytest.mark.parametrize(("exc", "code", "words"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.tif"), 2,
     "disk full writing /data/out.tif"),
    (OSError(errno.ENOSPC, "No space left on device"), 2, "disk full: free"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/x"), 2,
     "Permission denied: /data/x"),
    (OSError(errno.EIO, "Input/output error", "/data/x"), 2, "Input/output error: /data/x"),
    (OSError("no file named"), 1, "internal error: OSError"),
    (KeyError("missing key"), 2, "error: missing key"),
])
def test_os_errors_name_the_file(masks, tmp_path, capsys, monkeypatch, exc, code, words):
    monkeypatch.setattr(track_cli, "read_stack", _broken(exc))
    assert main(["track", str(masks), "--out", str(tmp_path / "t")]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_validation_errors_become_one_line():
    from pydantic import ValidationError

    from cellsight.config.tracking import TrackingConfig

    with pytest.raises(ValidationError) as raised:
        TrackingConfig(max_gap=99, solver="magic")
    line = one_line(raised.value)
    assert "\n" not in line and "max_gap" in line and "solver" in line
