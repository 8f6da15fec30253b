"""The ``cellsight`` command: every capability runs headless.

Each subcommand lives in its own module with ``register(subparsers)``; the module's
handler receives the parsed arguments and returns an exit code.
"""

import argparse
import importlib
import logging
import sys

from cellsight import __version__

# subcommand modules, in --help order
COMMANDS = ("info", "pipeline", "train", "segment", "track", "denoise", "convert")


class CommandError(Exception):
    """A user-facing error: printed as ``cellsight: error: ...`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="cellsight",
        description="Denoise, segment and track cells: the headless side of the napari plugin.",
    )
    parser.add_argument("--version", action="version", version=f"cellsight {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log more detail.")
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
    except (CommandError, ValueError, FileNotFoundError, FileExistsError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"cellsight: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cellsight: interrupted", file=sys.stderr)
        return 130
