"""Command-line options built from the fields of a config model.

The configs in :mod:`cellsight.config` hold every parameter's title, description, default
and bounds; the dock widgets read them and so does the CLI, through these helpers. An option
made here defaults to ``None`` ("not given"), so the config's own default applies unless the
user passes a value; :func:`given_values` collects the values that were passed.
"""

import argparse
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml

#: training options shared by ``cellsight train`` tasks (fields of TrainConfig)
TRAIN_OPTIONS = (
    "steps",
    "patch_size",
    "batch_size",
    "learning_rate",
    "val_fraction",
    "seed",
    "device",
)


def flag_of(name: str) -> str:
    """The command-line flag of a field: ``max_gap`` -> ``--max-gap``."""
    return "--" + name.replace("_", "-")


def range_of(config_cls, name: str) -> str:
    """The field's bounds as an interval, e.g. ``[0, 10]`` or ``(0, 1]``; "" if unbounded."""
    low = high = ""
    for item in config_cls.model_fields[name].metadata:
        for attr, text in (("ge", "[{}"), ("gt", "({}"), ("le", "{}]"), ("lt", "{})")):
            value = getattr(item, attr, None)
            if value is None:
                continue
            if attr in ("ge", "gt"):
                low = text.format(value)
            else:
                high = text.format(value)
    if not (low or high):
        return ""
    return f"{low or '(-inf'}, {high or 'inf)'}"


def option_help(config_cls, name: str, prefix: str = "", show_default: bool = True) -> str:
    """Help text of a field: its title and description, then its default and bounds."""
    title, description = config_cls.field_help(name)
    text = f"{prefix}{title}: {description}" if description else f"{prefix}{title}."
    notes = [f"default {config_cls.model_fields[name].default}"] if show_default else []
    bounds = range_of(config_cls, name)
    if bounds:
        notes.append(f"range {bounds}")
    text = f"{text} ({'; '.join(notes)})" if notes else text
    return text.replace("%", "%%")  # argparse formats help with %


def _kind(config_cls, name: str) -> dict:
    """``add_argument`` keywords for the field's type (bool flag, choices or a number)."""
    annotation = config_cls.model_fields[name].annotation
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return {"choices": choices, "type": type(choices[0])}
    if annotation in (int, float, str):
        return {"type": annotation, "metavar": {int: "N", float: "X", str: "TEXT"}[annotation]}
    raise TypeError(f"{config_cls.__name__}.{name}: no command-line form for {annotation}.")


def add_config_option(
    parser, config_cls, name: str, *, flag: str | None = None, prefix: str = "",
    show_default: bool = True, **kwargs,
) -> argparse.Action:
    """Add one option for field ``name`` of ``config_cls``; ``dest`` is the field name.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)command's parser.
    config_cls : type[StrictConfig]
        The config model the field belongs to.
    name : str
        Field name.
    flag : str, optional
        The flag, if not :func:`flag_of` ``name`` (``dest`` follows the flag then).
    prefix : str
        Text put before the help (e.g. which task the option is for).
    show_default : bool
        Say the field's default in the help (off where another config's default applies).
    **kwargs
        Further ``add_argument`` keywords (``metavar``, ...); they override the derived ones.

    Returns
    -------
    argparse.Action
        The added option.
    """
    options = {
        "default": None,
        "help": option_help(config_cls, name, prefix, show_default),
        **_kind(config_cls, name),
    }
    if flag is None:
        options["dest"] = name
    options.update(kwargs)
    return parser.add_argument(flag or flag_of(name), **options)


def add_config_options(parser, config_cls, names, **kwargs) -> None:
    """Add one option per field name (see :func:`add_config_option`)."""
    for name in names:
        add_config_option(parser, config_cls, name, **kwargs)


def given_values(args, names) -> dict:
    """The options of ``names`` that were given on the command line (not None)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def read_config_file(path) -> dict:
    """The mapping in a ``--config`` YAML file; one line naming the problem otherwise."""
    from cellsight.cli import CommandError

    path = Path(path)
    if path.is_dir():
        raise CommandError(f"--config {path} is a folder; give a config.yaml file (a model "
                           f"folder's is {path / 'config.yaml'}).")
    if not path.is_file():
        raise CommandError(f"--config {path}: no such file.")
    try:
        loaded = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise CommandError(f"--config {path} is not valid YAML{line}.") from exc
    if not isinstance(loaded, dict):
        raise CommandError(f"--config {path} does not hold a mapping of parameters.")
    return loaded


def config_values(config_cls, args) -> dict:
    """Values of ``config_cls`` (a task config) from ``--config`` and the command-line options.

    Starts from the defaults or the ``--config`` YAML file, then applies the network
    options (``--depth``, ``--base-channels``) and the training options given.
    """
    values = config_cls().model_dump()
    if args.config:
        from pydantic import ValidationError

        from cellsight.cli import CommandError, one_line

        try:
            values = config_cls.model_validate(read_config_file(args.config)).model_dump()
        except ValidationError as exc:
            raise CommandError(f"--config {args.config}: {one_line(exc)}") from exc
    values["unet"].update(given_values(args, ("depth", "base_channels")))
    values["training"].update(given_values(args, TRAIN_OPTIONS))
    return values
