"""``cellsight train``: train a model from images and label images.

``--task`` picks the trainer from :data:`TRAINERS` (one function per task, each taking
the parsed arguments); new tasks add an entry there.
"""

import json
import sys

from cellsight.cli._arrays import read_any
from cellsight.cli._instance import train_instance_task
from cellsight.cli._interrupt import StopOnSignal, report_stop
from cellsight.cli._options import (
    TRAIN_OPTIONS,
    add_config_option,
    add_config_options,
    config_values,
)
from cellsight.cli._progress import ProgressBars
from cellsight.config.finetune import FineTuneConfig
from cellsight.config.semantic import SemanticConfig
from cellsight.config.training import TrainConfig
from cellsight.core.progress import Cancelled


def _semantic_config(args):
    values = config_values(SemanticConfig, args)
    if args.zero_is_background:
        values["zero_is_background"] = True
    if args.scale is not None:
        values["scale"] = args.scale
    if args.n_classes is not None:
        values["n_classes"] = args.n_classes
        values["unet"]["out_channels"] = args.n_classes
    return SemanticConfig.model_validate(values)


def train_semantic_task(args, stop: StopOnSignal) -> dict:
    """Train a semantic model as the arguments say; return a summary.

    A stop (``stop``, raised by Ctrl-C / SIGTERM) saves the model so far to ``--out``
    and raises :class:`~cellsight.core.progress.Cancelled`.
    """
    from cellsight.core.segmentation.semantic import train_semantic

    config = _semantic_config(args)
    images = [read_any(p).data for p in args.images]
    labels = [read_any(p).data for p in args.labels]
    with ProgressBars("train") as progress:
        model = train_semantic(
            images,
            labels,
            config,
            out_dir=args.out,
            init=args.init,
            resume=args.resume,
            progress=stop.watch(progress),
            should_stop=stop,
        )
    metrics = {k: v for k, v in model.meta["metrics"].items() if k != "history"}
    return {"model": str(args.out), "classes": model.config.n_classes, **metrics}


# task name -> trainer(args, stop) -> summary dict
TRAINERS = {"semantic": train_semantic_task, "instance": train_instance_task}


def check_out(args) -> None:
    """Refuse a bad model folder OUT before training (see :mod:`cellsight.cli._outputs`).

    ``--from M --resume --out M`` continues the model in its own folder; otherwise OUT
    must not be an input, and an existing model there is kept unless ``--overwrite``.
    """
    from pathlib import Path

    from cellsight.cli import CommandError
    from cellsight.cli._outputs import check_output, foreign_to_model, same_path

    inputs = [*args.images, *args.labels, *(args.annotated or []), args.config]
    init = args.init if args.init and Path(args.init).exists() else None  # or a built-in name
    in_place = bool(args.resume and init and same_path(args.out, init))
    if not in_place:
        inputs.append(init)
    fine_tune = args.task == "instance" and args.init
    if fine_tune and args.overwrite:
        raise CommandError("--overwrite does not apply to fine-tuning (--task instance "
                           "--from): it always writes a new model folder.")
    if fine_tune and Path(args.out).is_dir() and any(Path(args.out).iterdir()):
        raise CommandError(f"--out {args.out} already exists and is not empty; fine-tuning "
                           "never overwrites a folder: choose a new one.")
    check_output(args.out, inputs=inputs, kind="folder", overwrite=args.overwrite or in_place,
                 replaceable=foreign_to_model)


#: options that a kind of training does not use: given, they are refused, not ignored
UNUSED = {
    "semantic": ("annotated", "diameter", "time_limit", "holdout"),
    "semantic --from": ("annotated", "diameter", "time_limit", "holdout"),
    "instance": ("scale", "n_classes", "diameter", "time_limit", "holdout"),
    "instance --from": ("scale", "n_classes"),
}
#: with --from the starting model's architecture is kept: these options must match it
KEPT = {"depth": ("unet", "depth"), "base_channels": ("unet", "base_channels"),
        "n_classes": ("n_classes",), "scale": ("scale",)}


def _starting_value(init, path: tuple[str, ...]):
    """A value of the ``--from`` model's config.yaml (None if it cannot be read)."""
    from cellsight.io.model_folder import ModelFolderError, read_config
    from cellsight.models import resolve_model

    try:
        value = read_config(resolve_model(init))
    except (ModelFolderError, ValueError):
        return None
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def check_options(args) -> None:
    """Refuse options this kind of training would silently ignore (one line each)."""
    from cellsight.cli import CommandError
    from cellsight.cli._options import flag_of

    if args.resume and not args.init:
        raise CommandError("--resume continues a model: give it with --from MODEL_DIR (the "
                           "folder whose last.pt to continue).")
    kind = f"{args.task}{' --from' if args.init else ''}"
    for dest in UNUSED[kind]:
        if getattr(args, dest, None) not in (None, False):
            raise CommandError(f"{flag_of(dest)} does not apply to train --task {kind}; "
                               "leave it out.")
    for dest, path in KEPT.items() if args.init else ():
        given = getattr(args, dest, None)
        if given is None or dest in UNUSED[kind]:
            continue
        kept = _starting_value(args.init, path)
        if kept is not None and kept != given:
            raise CommandError(f"{flag_of(dest)} {given} differs from the --from model's "
                               f"{kept}: fine-tuning keeps its architecture, classes and "
                               "scale; leave it out.")


def stopped_run(args, stop: StopOnSignal, exc: Cancelled) -> int:
    """A run stopped by a signal: its model in ``--out``, one line; return the exit code.

    Training from scratch saved it already (the trainer's stop path); a stopped
    fine-tuning run (``--from``) is saved here, unchecked against the held-out labels.
    """
    from cellsight.cli._instance import save_stopped_finetune

    fine_tune = args.task == "instance" and args.init
    return report_stop(stop, exc, args.out,
                       save=(lambda m, f: save_stopped_finetune(args, m)) if fine_tune else None)


def run(args) -> int:
    """Check the arguments, train, print a JSON summary.

    Stopped by Ctrl-C / SIGTERM: the model trained so far is saved to ``--out``, exit
    code 130 / 143.
    """
    if len(args.images) != len(args.labels):
        raise ValueError(
            f"Give one --labels file per --images file ({len(args.images)} images, "
            f"{len(args.labels)} labels)."
        )
    from cellsight.cli._package import check_trust_option, finetune_package_task, foreign_package

    check_trust_option(args, "--from")
    package = foreign_package(args.init) if args.init else None
    if package is not None:  # a bioimage.io package from another tool: a new package
        return finetune_package_task(args, package)
    check_options(args)
    check_out(args)
    check_package_options(args)
    with StopOnSignal() as stop:  # Ctrl-C / SIGTERM: save the model so far, say where
        try:
            summary = TRAINERS[args.task](args, stop)
        except Cancelled as exc:
            return stopped_run(args, stop, exc)
    if args.export:
        from cellsight.core.bmz.export import export_package

        summary["package"] = str(export_package(args.out, args.export))
    print(json.dumps(summary, indent=2))
    print(f"Model written to {args.out}", file=sys.stderr)
    if args.export:
        print(f"Package written to {args.export}", file=sys.stderr)
    return 0


def check_package_options(args) -> None:
    """``--from PKG``: cellsight's own packages only; ``--export`` needs a fine-tuning."""
    from cellsight.cli import CommandError
    from cellsight.cli._outputs import check_distinct, check_output

    if args.export:
        if not (args.task == "instance" and args.init):
            raise CommandError("--export writes the fine-tuned model as a package: it needs "
                               "--task instance --from MODEL (use cellsight export otherwise).")
        check_output(args.export, inputs=[*args.images, *args.labels, args.init],
                     suffixes=(".zip",), what="model package", flag="--export")
        check_distinct(("--out", args.out), ("--export", args.export))


def register(sub) -> None:
    """Add the ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="Train a segmentation model from images and label images.",
        description="Train a model and write a model folder (config.yaml, weights.pt, "
        "meta.json, last.pt). Labels: 1..K = classes, 0 = not annotated (ignored), or "
        "background with --zero-is-background. --task instance: instance labels "
        "(0 = background, one id per object).",
    )
    p.add_argument("--task", required=True, choices=sorted(TRAINERS), help="What to train.")
    p.add_argument("--images", nargs="+", required=True, metavar="IMG", help="Training images.")
    p.add_argument(
        "--labels",
        nargs="+",
        required=True,
        metavar="LBL",
        help="Label images, one per image, same shapes.",
    )
    p.add_argument(
        "--out", required=True, metavar="MODEL_DIR",
        help="Model folder to write; an existing model there is kept unless --overwrite.",
    )
    p.add_argument(
        "--overwrite", action="store_true",
        help="Replace an existing model folder at --out (one that holds only a model).",
    )
    p.add_argument(
        "--from",
        dest="init",
        metavar="MODEL",
        help="Start from this model (fine-tune; keeps its architecture): a model folder, a "
        "bioimage.io package cellsight exported (.zip), or for --task instance a built-in "
        "model name: nuclei. Instance fine-tuning holds out part of the labels and reports "
        "AP@0.5 before -> after; without --steps it uses the short fine-tuning defaults "
        "(see docs/finetune.md).",
    )
    p.add_argument(
        "--trust", action="store_true",
        help="--from a bioimage.io package from another tool: allow its architecture file "
        "(Python code) to run (state-dict weights). Such a package is fine-tuned on its own "
        "network and --out names the new package version (.zip).",
    )
    p.add_argument(
        "--export", metavar="PKG.zip",
        help="--task instance with --from: also write the fine-tuned model as a new "
        "bioimage.io package version; a --from package is recorded as its parent (name, "
        "version, sha256 in config.cellsight.parent), with the steps, data and held-out "
        "AP@0.5 before -> after.",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="With --from: continue from its last checkpoint (last.pt).",
    )
    for name, flag, metavar in (("time_limit_minutes", "--time-limit", "MIN"),
                                ("holdout_fraction", "--holdout", "F")):
        add_config_option(p, FineTuneConfig, name, flag=flag, metavar=metavar,
                          prefix="--task instance with --from: ")
    p.add_argument(
        "--diameter", type=float, metavar="D",
        help="--task instance with --from: nucleus diameter (pixels) in these images, as "
        "given to 'cellsight segment'; training runs at the same scale (default: the "
        "model's own scale).",
    )
    p.add_argument("--config", metavar="YAML", help="A config.yaml to take parameters from.")
    # defaults differ per task (and with --from), so the help gives only the bounds
    add_config_options(p, TrainConfig, TRAIN_OPTIONS, show_default=False)
    p.add_argument("--depth", type=int, help="U-Net depth (down-sampling steps).")
    add_config_option(p, SemanticConfig, "scale", prefix="--task semantic: ")
    add_config_option(p, SemanticConfig, "n_classes", prefix="--task semantic: ",
                      show_default=False, metavar="K")
    p.add_argument("--base-channels", type=int, help="U-Net channels at the top level.")
    p.add_argument(
        "--zero-is-background",
        action="store_true",
        help="Label 0 is the background class (dense masks), not 'unannotated'.",
    )
    p.add_argument(
        "--annotated",
        nargs="+",
        metavar="MASK",
        help="--task instance: one mask per label image, nonzero where its labels are "
        "complete (partially annotated images); elsewhere nothing is learned.",
    )
    p.set_defaults(handler=run)
