"""The command line's shape: help of every command, options from configs, progress bars."""

import argparse
import ast
from pathlib import Path

import pytest

import cellsight.cli
from cellsight.cli import COMMANDS, build_parser, main
from cellsight.cli._options import add_config_options, given_values, option_help
from cellsight.cli._progress import ProgressBars
from cellsight.config.tracking import TrackingConfig
from cellsight.core.progress import ProgressEvent


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: cellsight {name}")
    flags = [f for a in _subparser(name)._actions for f in a.option_strings]
    assert "--help" in flags
    for flag in flags:
        assert flag in out


def test_track_options_come_from_the_tracking_config(capsys):
    fields = [n for n in TrackingConfig.model_fields if n != "version"]
    parser = _subparser("track")
    args = parser.parse_args(["labels.tif", "--out", "o"])
    assert given_values(args, fields) == {}  # nothing given: the config's defaults apply
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in fields:
        assert "--" + name.replace("_", "-") in out
        assert " ".join(option_help(TrackingConfig, name).split()) in out
    assert "(default 2; range [0, 10])" in out  # --max-gap
    args = parser.parse_args(["l", "--out", "o", "--max-gap", "3", "--no-divisions",
                              "--solver", "greedy"])
    assert given_values(args, fields) == {"max_gap": 3, "divisions": False, "solver": "greedy"}


def test_track_checks_bounds_as_a_user_error(tmp_path, capsys):
    code = main(["track", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o"),
                 "--max-gap", "11"])
    assert code == 2 and "max_gap" in capsys.readouterr().err


def test_config_option_types():
    parser = argparse.ArgumentParser()
    add_config_options(parser, TrackingConfig, ("solver", "max_distance", "max_gap",
                                                "divisions"))
    args = parser.parse_args(["--max-distance", "2.5", "--max-gap", "1", "--divisions"])
    assert (args.max_distance, args.max_gap, args.divisions, args.solver) == (2.5, 1, True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--solver", "magic"])


def test_progress_bars_one_per_count_with_values(capsys):
    with ProgressBars("train") as progress:
        for step in range(1, 5):
            progress(ProgressEvent(step, 4, "training", {"loss": 0.5 / step, "preview": None}))
        assert progress._bar is None  # closed when the step reached the total
        progress(ProgressEvent(1, 3, "denoising"))
        progress(ProgressEvent(2, 3, "denoising"))
    assert progress._bar is None  # closed on leaving the block, though not at its total
    err = capsys.readouterr().err
    assert "train: training" in err and "4/4" in err and "loss=0.125" in err
    assert "train: denoising" in err and "2/3" in err
    assert "preview" not in err


def test_progress_bars_unknown_total_and_restarts(capsys):
    progress = ProgressBars()
    progress(ProgressEvent(3, 0, "reading"))
    first = progress._bar
    progress(ProgressEvent(1, 0, "reading"))  # the count went back: a new stage
    assert progress._bar is not first
    progress.close()
    assert "reading" in capsys.readouterr().err


def _cli_imports(path: Path) -> set[str]:
    """cellsight.cli modules that ``path`` imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.rsplit(".", 1)[-1] for n in names if n.startswith("cellsight.cli.")}


def test_cli_modules_import_no_cycle():
    folder = Path(cellsight.cli.__file__).parent
    graph = {p.stem: _cli_imports(p) for p in folder.glob("*.py") if p.stem != "__init__"}

    def visit(name, path):
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        for other in graph.get(name, ()):
            visit(other, [*path, name])

    for name in graph:
        visit(name, [])


def _all_parsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [("cellsight", parser), *sub.choices.items()]


@pytest.mark.parametrize(("name", "parser"), _all_parsers(), ids=lambda x: str(x)[:20])
def test_every_option_help_is_formatted(name, parser):
    """Each help string survives argparse's %-formatting and says what was written.

    ``--help`` (above) only crashes on some stray ``%`` (``50% of`` -> TypeError); others
    format silently into garbage (``%s``): every expanded help must equal its text with
    ``%%`` -> ``%`` and the ``%(...)s`` fields filled in.
    """
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.help or action.help == argparse.SUPPRESS:
            continue
        expanded = formatter._expand_help(action)  # raises on a bad %
        fields = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        fields["prog"] = parser.prog
        for key, value in fields.items():
            if isinstance(value, list | tuple) and key == "choices":
                fields[key] = ", ".join(map(str, value))
        plain = action.help.replace("%%", "\0")
        assert "%" not in plain or "%(" in plain, f"{name} {action.option_strings}: stray %"
        assert expanded == (action.help % fields), f"{name} {action.option_strings}"
    parser.format_help()
