"""``cellsight denoise``: Noise2Void on a noisy image, or apply a saved N2V model."""

import sys
from pathlib import Path

from cellsight.cli._blocks import add_block_options
from cellsight.cli._interrupt import StopOnSignal, report_stop
from cellsight.cli._options import add_config_options, flag_of, given_values
from cellsight.cli._progress import ProgressBars
from cellsight.core.progress import Cancelled

#: N2VConfig fields set from the command line
CONFIG_OPTIONS = ("steps", "patch_size", "batch_size", "variant")
TRAIN_OPTIONS = (*CONFIG_OPTIONS, "save_model")


def _config(args):
    from cellsight.config.n2v import N2VConfig

    return N2VConfig(**given_values(args, CONFIG_OPTIONS), device=args.device)


def _check_args(args) -> None:
    from cellsight.cli import CommandError

    if args.model:
        given = [flag_of(k) for k in TRAIN_OPTIONS if getattr(args, k) is not None]
        if given:
            raise CommandError(
                f"{', '.join(given)} only apply to training; drop them with --model."
            )


def run(args) -> int:
    """Train on IMG (unless --model is given), denoise IMG and write OUT; or a batch / big image."""
    from cellsight.cli._blocks import check_outputs, is_batch, is_blockwise
    from cellsight.cli._outputs import check_distinct, check_output, foreign_to_model

    from cellsight.cli._package import check_trust_option, denoise_package, foreign_package

    _check_args(args)
    check_trust_option(args)
    package = foreign_package(args.model)
    if package is not None:  # a bioimage.io package written by another tool
        return denoise_package(args, package)
    batch = is_batch(args.images)
    blockwise = not batch and is_blockwise(args.images[0], args.out, args)
    if (batch or blockwise) and not args.model:
        what = "A batch" if batch else "A blockwise (OME-Zarr / big) image"
        raise ValueError(f"{what} needs --model: train one first on a representative image "
                         "(cellsight denoise IMG --out OUT.tif --save-model DIR).")
    check_outputs(args, batch, blockwise)
    if args.save_model:
        check_output(args.save_model, inputs=args.images, kind="folder",
                     overwrite=bool(args.overwrite), replaceable=foreign_to_model,
                     flag="--save-model")
        check_distinct(("--out", args.out), ("--save-model", args.save_model))
    if batch:
        return _run_batch(args)
    args.image = args.images[0]
    if blockwise:
        return _run_blockwise(args)
    return _run_one(args)


def _run_batch(args) -> int:
    from cellsight.cli._blocks import run_batch_command
    from cellsight.core.blocks.files import denoise_file
    from cellsight.core.denoise import load_model

    return run_batch_command(args, "denoise", denoise_file, load_model(args.model))


def _run_blockwise(args) -> int:
    import json

    from cellsight.cli._blocks import denoise_blockwise
    from cellsight.core.denoise import load_model

    summary = denoise_blockwise(args, load_model(args.model))
    print(json.dumps(summary, indent=2))
    print(f"Denoised image written to {summary['out']}", file=sys.stderr)
    return 0


def stopped_folder(out) -> Path:
    """Where a training stopped without ``--save-model`` keeps its model.

    The first free ``<OUT stem>-n2v-stopped-NNN`` folder beside OUT.
    """
    out = Path(out)
    stem = out.name.split(".")[0] or "denoise"
    n = 1
    while (folder := out.parent / f"{stem}-n2v-stopped-{n:03d}").exists():
        n += 1
    return folder


def _run_one(args) -> int:
    """Train (unless --model) and denoise one image.

    A training stopped by Ctrl-C / SIGTERM saves its model (to --save-model, else to
    :func:`stopped_folder`) and exits with 130 / 143 without denoising.
    """
    from cellsight.config.n2v import DenoisePredictConfig
    from cellsight.core.denoise import denoise, load_model, train_n2v
    from cellsight.io.tiff import read_image, write_image

    img = read_image(args.image)
    axes = (args.axes or img.axes).upper()
    predict = DenoisePredictConfig(axes=axes, device=args.device)
    with ProgressBars("denoise") as progress:
        if args.model:
            model = load_model(args.model)
        else:
            with StopOnSignal() as stop:  # Ctrl-C / SIGTERM: save the model so far
                try:
                    model = train_n2v(
                        img.data, _config(args), axes=axes,
                        checkpoint_dir=args.save_model and f"{args.save_model}/checkpoints",
                        progress=stop.watch(progress), should_stop=stop,
                    )
                except Cancelled as exc:
                    progress.close()
                    return report_stop(stop, exc, args.save_model or stopped_folder(args.out),
                                       save=lambda m, folder: m.save(folder))
                if args.save_model:
                    progress.close()
                    model.save(args.save_model)
                    print(f"Model saved to {args.save_model}", file=sys.stderr)
        out = denoise(model, img.data, predict, progress=progress)
    write_image(args.out, out, axes=img.axes, scale=img.scale)
    print(f"Denoised image written to {args.out}", file=sys.stderr)
    return 0


def register(sub) -> None:
    """Add the ``denoise`` subcommand."""
    from cellsight.config.n2v import N2VConfig

    p = sub.add_parser(
        "denoise",
        help="Noise2Void: train a denoiser on a noisy image and denoise it.",
        description="Train a Noise2Void denoiser on IMG itself (no clean image needed) and "
        "write the denoised image (float32, IMG's shape and units) to --out. With --model, "
        "apply a saved model instead of training.",
    )
    p.add_argument(
        "images", nargs="+", metavar="IMG",
        help="Noisy TIFF / OME-TIFF / OME-Zarr image; with --model also several images, "
        "folders or quoted glob patterns (a batch).",
    )
    p.add_argument(
        "--out", required=True,
        help="Output TIFF (float32, same shape as IMG); .ome.zarr for a blockwise run; a "
        "folder for a batch (one output per input, summary.csv, resumable). Never an input; "
        "an existing OUT is kept unless --overwrite.",
    )
    add_config_options(p, N2VConfig, CONFIG_OPTIONS)
    p.add_argument(
        "--save-model",
        metavar="DIR",
        help="Save the trained model folder here (checkpoints in DIR/checkpoints).",
    )
    p.add_argument("--model", metavar="MODEL",
                   help="Apply this saved N2V model (folder, or a bioimage.io package .zip / "
                   "folder with rdf.yaml); no training. A package from another tool runs on "
                   "one image; an output that is not an image like the input is written as "
                   "a float image.")
    p.add_argument(
        "--trust",
        action="store_true",
        help="Allow a package's architecture file (Python code) to run: needed for packages "
        "that hold only pytorch_state_dict weights. Without it such a package is refused "
        "with the file's name and sha256.",
    )
    p.add_argument(
        "--axes",
        help="Axis letters of IMG, e.g. TYX for a time series, ZYX for a volume "
        "(default: read from the file).",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="Compute device."
    )
    add_block_options(p)
    p.set_defaults(handler=run)
