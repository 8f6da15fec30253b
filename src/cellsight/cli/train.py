"""``cellsight train``: train a model from images and label images.

``--task`` picks the trainer from :data:`TRAINERS` (one function per task, each taking
the parsed arguments); new tasks add an entry there.
"""

import json
import sys
from pathlib import Path

import yaml

from cellsight.cli._arrays import StderrProgress, read_any
from cellsight.config.finetune import FineTuneConfig
from cellsight.config.semantic import SemanticConfig
from cellsight.config.training import TrainConfig

TRAIN_OPTIONS = (
    "steps",
    "patch_size",
    "batch_size",
    "learning_rate",
    "val_fraction",
    "seed",
    "device",
)


def config_values(config_cls, args) -> dict:
    """Values of ``config_cls`` (a task config) from ``--config`` and the command-line options.

    Starts from the defaults or the ``--config`` YAML file, then applies the network
    options (``--depth``, ``--base-channels``) and the training options given.
    """
    values = config_cls().model_dump()
    if args.config:
        loaded = yaml.safe_load(Path(args.config).read_text())
        values = config_cls.model_validate(loaded).model_dump()
    for name in ("depth", "base_channels"):
        if getattr(args, name) is not None:
            values["unet"][name] = getattr(args, name)
    for name in TRAIN_OPTIONS:
        if getattr(args, name) is not None:
            values["training"][name] = getattr(args, name)
    return values


def _semantic_config(args):
    values = config_values(SemanticConfig, args)
    if args.zero_is_background:
        values["zero_is_background"] = True
    if args.scale is not None:
        values["scale"] = args.scale
    return SemanticConfig.model_validate(values)


def train_semantic_task(args) -> dict:
    """Train a semantic model as the arguments say; return a summary."""
    from cellsight.core.segmentation.semantic import train_semantic

    config = _semantic_config(args)
    images = [read_any(p).data for p in args.images]
    labels = [read_any(p).data for p in args.labels]
    model = train_semantic(
        images,
        labels,
        config,
        out_dir=args.out,
        init=args.init,
        resume=args.resume,
        progress=StderrProgress("train"),
    )
    metrics = {k: v for k, v in model.meta["metrics"].items() if k != "history"}
    return {"model": str(args.out), "classes": model.config.n_classes, **metrics}


def train_instance_task(args) -> dict:
    """Train an instance model (see :mod:`cellsight.cli._instance`)."""
    from cellsight.cli._instance import train_instance_task as train

    return train(args)


# task name -> trainer(args) -> summary dict
TRAINERS = {"semantic": train_semantic_task, "instance": train_instance_task}


def run(args) -> int:
    """Check the arguments, train, print a JSON summary."""
    if len(args.images) != len(args.labels):
        raise ValueError(
            f"Give one --labels file per --images file ({len(args.images)} images, "
            f"{len(args.labels)} labels)."
        )
    summary = TRAINERS[args.task](args)
    print(json.dumps(summary, indent=2))
    print(f"Model written to {args.out}", file=sys.stderr)
    return 0


def _help(name: str) -> str:
    return TrainConfig.field_help(name)[1]


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
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="Model folder to write.")
    p.add_argument(
        "--from",
        dest="init",
        metavar="MODEL_DIR",
        help="Start from this model (fine-tune; keeps its architecture); for --task "
        "instance also a built-in model name: nuclei. Instance fine-tuning holds out part "
        "of the labels and reports AP@0.5 before -> after; without --steps it uses the "
        "short fine-tuning defaults (see docs/finetune.md).",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="With --from: continue from its last checkpoint (last.pt).",
    )
    p.add_argument(
        "--time-limit", type=float, metavar="MIN",
        help="--task instance with --from: " + FineTuneConfig.field_help("time_limit_minutes")[1],
    )
    p.add_argument(
        "--holdout", type=float, metavar="F",
        help="--task instance with --from: " + FineTuneConfig.field_help("holdout_fraction")[1],
    )
    p.add_argument(
        "--diameter", type=float, metavar="D",
        help="--task instance with --from: nucleus diameter (pixels) in these images, as "
        "given to 'cellsight segment'; training runs at the same scale (default: the "
        "model's own scale).",
    )
    p.add_argument("--config", metavar="YAML", help="A config.yaml to take parameters from.")
    p.add_argument("--steps", type=int, help=_help("steps"))
    p.add_argument("--patch-size", type=int, help=_help("patch_size"))
    p.add_argument("--batch-size", type=int, help=_help("batch_size"))
    p.add_argument("--learning-rate", type=float, help=_help("learning_rate"))
    p.add_argument("--val-fraction", type=float, help=_help("val_fraction"))
    p.add_argument("--seed", type=int, help=_help("seed"))
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help=_help("device"))
    p.add_argument("--depth", type=int, help="U-Net depth (down-sampling steps).")
    p.add_argument("--scale", type=float, help=SemanticConfig.field_help("scale")[1])
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
