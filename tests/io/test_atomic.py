"""Atomic writes keep the permissions of a normal write and never leave partial results."""

import os
import stat

import numpy as np
import pytest

from cellsight.io.atomic import atomic_folder, atomic_path, replace_folder
from cellsight.io.tiff import save_json, write_labels

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Set the process umask for one test; the previous one comes back afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write(path, text="x"):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600),
                                                 (0o002, 0o664)])
def test_new_file_gets_the_mode_of_a_normal_write(tmp_path, umask, mask, expected):
    umask(mask)
    _write(tmp_path / "a.txt")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert _mode(tmp_path / "a.txt") == expected == _mode(tmp_path / "plain.txt")


def test_every_writer_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    write_labels(tmp_path / "l.tif", np.ones((4, 4), np.uint16))
    save_json(tmp_path / "s.json", {"a": 1})
    with atomic_folder(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("x")
    assert _mode(tmp_path / "l.tif") == _mode(tmp_path / "s.json") == 0o644
    assert _mode(tmp_path / "folder") == 0o755 and _mode(tmp_path / "folder/inner.txt") == 0o644
    umask(0o077)
    with atomic_folder(tmp_path / "private") as tmp:
        (tmp / "inner.txt").write_text("x")
    assert _mode(tmp_path / "private") == 0o700


def test_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    _write(tmp_path / "a.txt", "old")
    assert _mode(tmp_path / "a.txt") == 0o644
    _write(tmp_path / "a.txt", "new")
    assert _mode(tmp_path / "a.txt") == 0o644 and (tmp_path / "a.txt").read_text() == "new"
    os.chmod(tmp_path / "a.txt", 0o664)
    umask(0o077)  # a normal write into an existing file keeps its mode, whatever the umask
    _write(tmp_path / "a.txt", "newer")
    assert _mode(tmp_path / "a.txt") == 0o664


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    _write(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_folder_failure_keeps_the_old_folder(tmp_path):
    with atomic_folder(tmp_path / "f") as tmp:
        (tmp / "one.txt").write_text("1")
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "f") as tmp:
        (tmp / "two.txt").write_text("2")
        raise RuntimeError("crash")
    assert [p.name for p in (tmp_path / "f").iterdir()] == ["one.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_folder_replace_carries_only_what_is_asked(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("stale.txt", "keep.txt"):
        (folder / name).write_text(name)
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.txt").write_text("deep")
    with atomic_folder(folder, carry=("keep.txt", "sub", "absent")) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt", "new.txt", "sub"]
    assert (folder / "sub" / "deep.txt").read_text() == "deep"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    with pytest.raises(FileExistsError, match="already exists"), \
            atomic_folder(folder, overwrite=False):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"), atomic_folder(tmp_path / "file"):
        pass


def test_replace_folder_puts_the_old_one_back_on_failure(tmp_path, monkeypatch):
    old, new = tmp_path / "m", tmp_path / "new"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("device busy")
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="busy"):
        replace_folder(new, old)
    assert (old / "a").read_text() == "old" and new.is_dir()
