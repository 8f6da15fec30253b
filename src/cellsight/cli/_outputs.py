"""The checks every command makes on its outputs before any work starts.

:func:`check_output` refuses, with one line (a :class:`~cellsight.cli.CommandError`, exit
code 2), an output that

* is one of the inputs, holds them, or lies inside one (after resolving symlinks and
  relative paths);
* has a name whose format cellsight does not write there (``labels.png``);
* exists, unless ``--overwrite`` (a batch folder may exist: finished files are skipped);
  a read-only file, or a folder holding files that are not an earlier result, is not
  replaced even then;
* cannot be written: its nearest existing folder is probed by creating (and removing) a
  hidden file, which also catches read-only file systems and, for root, ``/sys``.
"""

import os
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

#: TIFF names (``.ome.tif`` included)
TIFF = (".tif", ".tiff")
#: OME-Zarr names
ZARR = (".zarr",)

#: endings of file names that an output folder must not have (``train --out m.tif``)
FILE_NAMES = (*TIFF, ".png", ".jpg", ".jpeg", ".zip", ".csv", ".txt", ".yaml")

#: what an output is: one ``file``; a ``folder`` written as a unit (a model, a CTC result,
#: an OME-Zarr); a ``batch`` folder that receives one file per input
KINDS = ("file", "folder", "batch")


def _error(message: str):
    from cellsight.cli import CommandError

    return CommandError(message)


def _real(path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def same_path(a, b) -> bool:
    """True if ``a`` and ``b`` name the same file or folder (symlinks, ``..`` resolved)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return _real(a) == _real(b)


def _inside(child, parent) -> bool:
    child, parent = _real(child), _real(parent)
    return child != parent and child.is_relative_to(parent)


def check_not_input(out, inputs: Iterable, *, flag: str = "--out", holds: str = "any",
                    inside_ok: bool = False) -> None:
    """Refuse an output that is an input, holds one, or (unless ``inside_ok``) lies in one.

    ``holds`` says which inputs an output folder must not hold: ``"any"`` (at any depth:
    the folder is replaced as a unit), ``"direct"`` (in the folder itself: a batch writes
    its files there) or ``"none"``.
    """
    for given in inputs:
        if given is None or str(given) == "":
            continue
        if same_path(out, given):
            raise _error(f"{flag} {out} is the input {given}; write the result to a new path.")
        held = _inside(given, out) if holds == "any" else (
            holds == "direct" and same_path(Path(_real(given)).parent, out))
        if held:
            raise _error(f"{flag} {out} holds the input {given}; write the result to another "
                         "folder.")
        if not inside_ok and _inside(out, given):
            raise _error(f"{flag} {out} lies inside the input {given}; write the result "
                         "elsewhere.")


def check_suffix(out, suffixes: tuple[str, ...], *, flag: str = "--out",
                 what: str = "") -> None:
    """Refuse a name that does not end in one of ``suffixes`` (case-insensitive)."""
    name = str(out).rstrip("/\\").lower()
    if not name.endswith(tuple(s.lower() for s in suffixes)):
        names = ", ".join(suffixes)
        raise _error(f"{flag} {out}: cellsight writes {what or 'this output'} as "
                     f"{names}; give a name ending in {names}.")


def _probe(folder: Path) -> None:
    probe = folder / f".cellsight-probe-{secrets.token_hex(4)}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def check_writable(out, *, flag: str = "--out") -> None:
    """Refuse an output whose folder cannot be created or written to."""
    path = Path(os.path.abspath(out))
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise _error(f"{flag} {out} cannot be written: {folder} is a file, not a folder.")
    try:
        _probe(folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _error(f"{flag} {out} cannot be written: cannot create files in {folder} "
                     f"({reason}).") from exc


def _check_existing(path: Path, kind: str, overwrite: bool, flag: str,
                    replaceable: Callable[[Path], list[str]] | None) -> None:
    if kind == "batch":
        if path.exists() and not path.is_dir():
            raise _error(f"{flag} {path} is a file; the results go into a folder: give a folder name.")
        return
    if not (path.exists() or path.is_symlink()):
        return
    if kind == "file" and path.is_dir():
        raise _error(f"{flag} {path} is a folder; give a file name.")
    if kind == "folder" and not path.is_dir():
        raise _error(f"{flag} {path} is a file; give a folder name.")
    if kind == "folder" and replaceable is not None:
        if not any(path.iterdir()):
            return  # an empty folder made for the result
        foreign = replaceable(path)
        if foreign:
            raise _error(f"{flag} {path} holds files that are not an earlier result (e.g. "
                         f"{sorted(foreign)[0]}); it is not replaced: give a new folder.")
    if not overwrite:
        raise _error(f"{flag} {path} already exists; use --overwrite to replace it.")
    if kind == "file" and not stat.S_IMODE(path.stat().st_mode) & 0o222:
        raise _error(f"{flag} {path} is read-only; it is not replaced (change its "
                     "permissions first if you mean it).")


def check_output(
    out,
    *,
    inputs: Iterable = (),
    kind: str = "file",
    overwrite: bool = False,
    suffixes: tuple[str, ...] | None = None,
    what: str = "",
    flag: str = "--out",
    holds: str | None = None,
    inside_ok: bool = False,
    replaceable: Callable[[Path], list[str]] | None = None,
) -> Path:
    """Check an output before the work starts; raise CommandError (exit 2) with one line.

    Parameters
    ----------
    out : path
        The output the command will write.
    inputs : iterable of paths
        Everything the command reads (None entries are skipped).
    kind : {"file", "folder", "batch"}
        See :data:`KINDS`.
    overwrite : bool
        The user's ``--overwrite``.
    suffixes : tuple of str, optional
        The names cellsight writes in the format ``what`` (e.g. :data:`TIFF`).
    flag : str
        The option named in messages.
    holds : {"any", "direct", "none"}, optional
        See :func:`check_not_input`; default ``"direct"`` for a batch, ``"any"`` for a
        folder, ``"none"`` for a file.
    inside_ok : bool
        Allow an output inside an input (labels written into an input OME-Zarr).
    replaceable : callable, optional
        For folders: ``replaceable(path)`` lists the entries that are not part of an
        earlier result; such a folder is never replaced. An empty folder is used as is.

    Returns
    -------
    pathlib.Path
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}.")
    if suffixes:
        check_suffix(out, suffixes, flag=flag, what=what)
    holds = holds or {"batch": "direct", "folder": "any", "file": "none"}[kind]
    check_not_input(out, inputs, flag=flag, holds=holds, inside_ok=inside_ok)
    if not suffixes and kind == "folder" and Path(out).suffix.lower() in FILE_NAMES:
        raise _error(f"{flag} {out} is written as a folder, but its name ends like a "
                     f"{Path(out).suffix} file: give a folder name.")
    _check_existing(Path(out), kind, overwrite, flag, replaceable)
    check_writable(out, flag=flag)
    return Path(out)


def check_distinct(*named: tuple[str, object]) -> None:
    """Refuse two outputs that name the same path: ``check_distinct(("--out", a), ...)``."""
    given = [(flag, path) for flag, path in named if path]
    for i, (flag_a, a) in enumerate(given):
        for flag_b, b in given[i + 1:]:
            if same_path(a, b) or _inside(a, b) or _inside(b, a):
                raise _error(f"{flag_a} {a} and {flag_b} {b} overlap; give them separate "
                             "paths.")


def foreign_to_model(folder: Path) -> list[str]:
    """Entries of ``folder`` that are not part of a model folder (see ``io.model_folder``)."""
    from cellsight.io.atomic import is_temporary
    from cellsight.io.model_folder import LAST_FILE, MODEL_FILES

    known = {*MODEL_FILES, LAST_FILE, "checkpoints"}
    return [n for n in os.listdir(folder) if n not in known and not is_temporary(n)]
