"""The ``cellsight`` command: every capability runs headless.

Each subcommand lives in its own module with ``register(subparsers)``; the module's
handler receives the parsed arguments and returns an exit code.
"""

import argparse
import errno
import importlib
import logging
import sys

from cellsight import __version__

# subcommand modules, in --help order
COMMANDS = ("info", "pipeline", "train", "segment", "track", "denoise", "convert", "export")


class CommandError(Exception):
    """A user-facing error: printed as ``cellsight: error: ...`` with exit code 2."""


#: what a user can fix (bad input, options, paths): one line, exit code 2. ValueError
#: covers ImageReadError, ModelFolderError and pydantic's ValidationError.
USER_ERRORS = (CommandError, ValueError, FileNotFoundError, FileExistsError,
               IsADirectoryError, NotADirectoryError, PermissionError, KeyError)

#: OSError numbers that mean the disk (or the user's quota) is full
DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


#: longest error line printed; longer messages (a library listing every allowed value)
#: are cut there
MAX_LINE = 500


def one_line(exc: BaseException) -> str:
    """The message of a user error as one line (at most :data:`MAX_LINE` characters).

    pydantic's multi-line ``ValidationError`` becomes ``field: reason; ...``; a KeyError
    shows its text without quotes; any other message is joined onto one line.
    """
    text = _joined(exc)
    return text if len(text) <= MAX_LINE else text[:MAX_LINE - 4].rstrip() + " ..."


def _joined(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ())) or 'value'}: {e.get('msg', '')}"
                 for e in exc.errors()]
        return "; ".join(parts)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _os_error(exc: OSError) -> str | None:
    """One line for an OSError that names a file (a disk full, a read-only place...)."""
    if exc.errno in DISK_FULL:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"disk full{where}: free some space (or write elsewhere) and run again."
    if exc.filename:
        return one_line(exc)
    return None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="cellsight",
        description="Denoise, segment and track cells: the headless side of the napari plugin.",
    )
    parser.add_argument("--version", action="version", version=f"cellsight {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log more detail.")
    parser.add_argument(
        "--debug", action="store_true",
        help="On an error, show the full Python traceback (for bug reports).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cellsight.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cellsight`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"cellsight: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cellsight: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if args.debug:
            raise
        message = _os_error(exc)
        if message is not None:
            print(f"cellsight: error: {message}", file=sys.stderr)
            return 2
        return _internal(exc)
    except Exception as exc:
        if args.debug:
            raise
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    """An unexpected error: a short message (exit code 1); --debug shows the traceback."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    print(f"cellsight: internal error: {type(exc).__name__}: {text} (run again with "
          "--debug for the traceback; please report it)", file=sys.stderr)
    return 1
