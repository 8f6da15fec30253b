"""Atomic writes: a result appears whole or not at all, with the permissions of a normal write.

* :func:`atomic_path` - one file: written under a hidden temporary name beside the
  destination, flushed to disk (``fsync``) and renamed over it.
* :func:`atomic_folder` - a folder written as a unit (a model folder, a CTC result):
  built in a hidden temporary sibling, then renamed into place; an existing folder is
  renamed aside first and deleted only once the new one is in place, so a complete
  folder exists at every instant (except the instant between the two renames, where
  the old one sits under its hidden name).
* :func:`replace_folder` - that last step alone, for writers that build the folder
  themselves (OME-Zarr, GEFF).

Permissions: the temporary file or folder is created with ``os.open(..., 0o666)`` /
``os.mkdir(..., 0o777)``, so the kernel applies the process's umask (and a default ACL
where one is set) exactly as for a normal ``open(path, "w")``: ``0o666 & ~umask`` for a
file, ``0o777 & ~umask`` for a folder. Nothing reads or changes the umask: the usual
``os.umask(0)``-and-restore would, for that instant, give files created by other threads
the wrong mode. A file or folder that is replaced keeps its permission bits, as
writing into an existing file does.
"""

import contextlib
import contextvars
import errno
import glob
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

#: suffixes of the hidden temporary names (``.NAME.XXXXXXXX.part`` for files,
#: ``.new`` / ``.old`` for folders); a killed run may leave them behind
TEMP_SUFFIXES = (".part", ".new", ".old")

#: temporary folders of :func:`atomic_folder` being filled in this thread / task: files
#: written inside them are flushed once, with the whole folder, not one by one
_BUILDING: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar(
    "cellsight_atomic_folders", default=()
)


#: OSError numbers of a full disk (or quota)
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _naming(exc: OSError, path: Path) -> OSError:
    """A full disk reported for ``path`` (the destination), not for a hidden temporary name."""
    if exc.errno in DISK_FULL:
        return OSError(exc.errno, os.strerror(exc.errno), str(path))
    return exc


def _raise_named(exc: OSError, path: Path):
    """Re-raise ``exc``, a full disk as reported for the destination ``path``."""
    named = _naming(exc, path)
    if named is exc:
        raise exc
    raise named from exc


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")


def _new_file(path: Path) -> Path:
    """Create an empty hidden file beside ``path`` (mode from the umask, like open "w")."""
    for _ in range(100):
        tmp = _sibling(path, ".part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"Cannot create a temporary file beside {path}.")


def _new_folder(path: Path) -> Path:
    """Create an empty hidden folder beside ``path`` (mode from the umask, like mkdir)."""
    for _ in range(100):
        tmp = _sibling(path, ".new")
        try:
            tmp.mkdir(0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"Cannot create a temporary folder beside {path}.")


def _keep_mode(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the permission bits of the ``path`` it replaces (if that exists)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: str | os.PathLike) -> None:
    """Flush a folder's entries (new names, renames) to disk, where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_folder(root)


def is_temporary(name: str) -> bool:
    """True for the hidden temporary names this module uses."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIXES)


def remove_stale_parts(path: str | os.PathLike) -> None:
    """Delete the temporary files (``.NAME.*.part``) a killed run left beside ``path``.

    Only for destinations a single writer owns (a batch output, a model's ``last.pt``):
    the temporary file of a write in progress elsewhere would go too.
    """
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success.

    The temporary file (``.NAME.XXXXXXXX.part``, created empty) lives in the
    destination folder so the final :func:`os.replace` is atomic; before it, the data
    are flushed to disk, so a crash or power cut never leaves a partial file under
    ``path``. On error the temporary file is removed and an existing file at ``path``
    is left untouched. The new file gets the mode of a normal write (see the module
    docstring).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fsync = fsync and not any(f in path.parents for f in _BUILDING.get())
    try:
        tmp = _new_file(path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        yield tmp
        _keep_mode(tmp, path)
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, path)
        if fsync:
            fsync_folder(path.parent)
    except OSError as exc:
        _raise_named(exc, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _bring_over(old: Path, new: Path, names: Iterable[str]) -> None:
    """Hard-link (or copy) the entries ``names`` of ``old`` into ``new``; ``old`` stays whole."""
    for name in names:
        src, dst = old / name, new / name
        if dst.exists() or dst.is_symlink():
            continue
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_dir():
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        elif src.exists():
            _link_or_copy(str(src), str(dst))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replace_folder(new: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the finished folder ``new`` to ``path``, replacing what is there.

    An existing ``path`` is renamed aside (``.NAME.XXXXXXXX.old``) first, ``new`` is
    renamed into place, and only then is the old one deleted; if the second rename
    fails, the old one is put back.
    """
    new, path = Path(new), Path(path)
    if not (path.exists() or path.is_symlink()):
        os.replace(new, path)
        return path
    old = _sibling(path, ".old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)
    return path


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool = True,
    carry: Iterable[str] = (),
    fsync: bool = True,
) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; it replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        The folder to write.
    overwrite : bool
        Replace an existing folder; otherwise raise FileExistsError before anything runs.
    carry : iterable of str
        Names of entries of an existing ``path`` to keep in the new folder (hard-linked,
        or copied across file systems), unless the block wrote an entry of that name.
    fsync : bool
        Flush every file to disk before the rename.

    Raises
    ------
    FileExistsError
        If ``path`` is a file, or exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with atomic_folder(out) as tmp:
    ...     _ = (tmp / "a.txt").write_text("1")
    ...     _ = (tmp / "b.txt").write_text("2")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt', 'b.txt']
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; use --overwrite (overwrite=True) to "
                              "replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = _new_folder(path)
    except OSError as exc:
        raise _naming(exc, path) from exc
    token = _BUILDING.set((*_BUILDING.get(), tmp))
    try:
        try:
            yield tmp
        finally:
            _BUILDING.reset(token)
        if path.is_dir():
            _bring_over(path, tmp, carry)
            _keep_mode(tmp, path)
        if fsync:
            _fsync_tree(tmp)
        replace_folder(tmp, path)
        if fsync:
            fsync_folder(path.parent)
    except OSError as exc:
        _raise_named(exc, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
