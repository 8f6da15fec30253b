"""``cellsight segment``: segment an image with a trained model.

``--mode`` picks the segmenter from :data:`SEGMENTERS` (one function per mode, each
taking the parsed arguments); new modes add an entry there.
"""

import argparse
import json
import os
import sys

import numpy as np

from cellsight.cli._arrays import read_any
from cellsight.cli._blocks import add_block_options, check_outputs, is_batch, is_blockwise
from cellsight.cli._instance import (
    add_instance_options,
    segment_instance,
    segment_instance_batch,
    segment_instance_blockwise,
)
from cellsight.cli._outputs import TIFF, check_distinct, check_output
from cellsight.cli._progress import ProgressBars
from cellsight.io.tiff import write_image, write_labels


def _label_axes(image_axes: str, labels: np.ndarray) -> str | None:
    """Keep the input's axes for the output when the shapes line up (no C / S axis)."""
    kept = "".join(a for a in image_axes if a not in "CS")
    return kept if len(kept) == labels.ndim else None


def semantic_predict_config(args):
    """The SemanticPredictConfig that ``cellsight segment --mode semantic`` asks for."""
    from cellsight.config.semantic import SemanticPredictConfig

    batch = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    return SemanticPredictConfig(
        axes=args.axes or "",
        timeseries=args.timeseries,
        tile_size=args.tile_size or 0,
        device=args.device,
        test_time_augmentation=args.tta,
        **batch,
    )


def segment_semantic(args) -> dict:
    """Segment one image with a semantic model; write labels (and probabilities)."""
    from cellsight.core.segmentation.semantic import SemanticModel, predict_semantic

    model = SemanticModel.load(args.model)
    image = read_any(args.image)
    config = semantic_predict_config(args)
    with ProgressBars("segment") as progress:
        result = predict_semantic(model, image.data, config, progress=progress)
    write_labels(args.out, result.labels, axes=_label_axes(image.axes, result.labels))
    if args.probabilities:
        write_image(args.probabilities, result.probabilities)
    counts = np.bincount(result.labels.ravel())
    return {
        "out": str(args.out),
        "shape": list(result.labels.shape),
        "pixels_per_class": {int(c): int(n) for c, n in enumerate(counts) if n},
    }


def segment_semantic_blockwise(args) -> dict:
    """One big image with a semantic model, blockwise; OUT is an OME-Zarr."""
    from cellsight.cli._blocks import semantic_blockwise
    from cellsight.core.segmentation.semantic import SemanticModel

    return semantic_blockwise(args, SemanticModel.load(args.model))


def segment_semantic_batch(args) -> int:
    """Many files with a semantic model: one label TIFF each, resumable."""
    from cellsight.cli._blocks import run_batch_command
    from cellsight.core.blocks.files import semantic_file
    from cellsight.core.segmentation.semantic import SemanticModel

    return run_batch_command(args, "segment", semantic_file, SemanticModel.load(args.model),
                             args.tta)


# mode name -> (one image, one big image blockwise, a batch of files)
SEGMENTERS = {
    "semantic": (segment_semantic, segment_semantic_blockwise, segment_semantic_batch),
    "instance": (segment_instance, segment_instance_blockwise, segment_instance_batch),
}


PREDICT = ("axes", "timeseries", "tile_size", "device", "tta")
INSTANCE = ("diameter", "seed_threshold", "mask_threshold", "min_size", "split_by_shape")
ENGINE = ("workers", "scheduler", "retries")
#: (mode, run) -> the options that run uses; any other option given is refused
USES = {
    ("semantic", "one"): (*PREDICT, "batch_size", "probabilities"),
    ("semantic", "blockwise"): ("block_size", *ENGINE),
    ("semantic", "batch"): ("tta", *ENGINE),
    ("instance", "one"): (*PREDICT, *INSTANCE),
    ("instance", "blockwise"): (*PREDICT, *INSTANCE, "block_size", *ENGINE),
    ("instance", "batch"): ("timeseries", "tile_size", "device", "tta", *INSTANCE, *ENGINE),
}
RUNS = {"one": "one image in memory", "blockwise": "a blockwise run", "batch": "a batch"}
DEFAULTS = {"device": "auto"}


def check_options(args, run: str) -> None:
    """Refuse, with one line, an option the chosen mode and run would silently ignore."""
    from cellsight.cli import CommandError
    from cellsight.cli._options import flag_of

    used = USES[(args.mode, run)]
    every = {name for names in USES.values() for name in names}
    for name in sorted(every - set(used)):
        value = getattr(args, name, None)
        if value in (None, False, DEFAULTS.get(name)):
            continue
        other = "instance" if args.mode == "semantic" else "semantic"
        if name in USES[(other, run)]:
            raise CommandError(f"{flag_of(name)} applies to --mode {other} only (this is "
                               f"--mode {args.mode}); leave it out.")
        raise CommandError(f"{flag_of(name)} is not used by {RUNS[run]} with --mode "
                           f"{args.mode}; leave it out.")


def check_model(args) -> None:
    """Refuse a model of the other kind (``--mode semantic --model nuclei``) before reading."""
    from cellsight.cli import CommandError
    from cellsight.io.model_folder import read_config
    from cellsight.models import BUILTIN_MODELS, resolve_model

    if args.mode == "semantic" and args.model in BUILTIN_MODELS and not os.path.isdir(args.model):
        raise CommandError(f"--model {args.model} is a built-in instance model: run it with "
                           "--mode instance (--mode semantic needs a semantic model folder).")
    from cellsight.io.bmz.read import is_package, open_package

    if is_package(args.model):
        task = open_package(args.model).cellsight.get("task")
    else:
        task = read_config(resolve_model(args.model)).get("task")
    if task != args.mode:
        a = {"instance": "an instance"}
        raise CommandError(f"--model {args.model} is {a.get(task, f'a {task}')} model, not "
                           f"{a.get(args.mode, f'a {args.mode}')} model: run it with --mode "
                           f"{task}, or give {a.get(args.mode, f'a {args.mode}')} model.")


def run(args) -> int:
    """Segment one image (in memory or blockwise) or a batch; print a JSON summary."""
    from cellsight.cli._package import check_trust_option, foreign_package, segment_package

    check_trust_option(args)
    package = foreign_package(args.model)
    if package is not None:  # a bioimage.io package written by another tool
        return segment_package(args, package)
    args.mode = args.mode or "instance"
    one, blockwise, batch = SEGMENTERS[args.mode]
    if is_batch(args.images):
        check_options(args, "batch")
        check_model(args)
        check_outputs(args, batch=True, blockwise=False)
        return batch(args)
    single = argparse.Namespace(**{**vars(args), "image": args.images[0]})
    big = is_blockwise(single.image, args.out, args)
    check_options(args, "blockwise" if big else "one")
    check_model(args)
    check_outputs(args, batch=False, blockwise=big)
    if args.probabilities:
        check_output(args.probabilities, inputs=[single.image], overwrite=bool(args.overwrite),
                     suffixes=TIFF, what="probabilities", flag="--probabilities")
        check_distinct(("--out", args.out), ("--probabilities", args.probabilities))
    if big:
        summary = blockwise(single)
    else:
        summary = one(single)
    print(json.dumps(summary, indent=2))
    print(f"Labels written to {summary['out']}", file=sys.stderr)
    return 0


def register(sub) -> None:
    """Add the ``segment`` subcommand."""
    p = sub.add_parser(
        "segment",
        help="Segment an image with a trained model.",
        description="Segment IMG with a model folder and write a label TIFF with the same "
        "spatial shape (instance: separated objects, a T-stack gives a T-stack; semantic: "
        "the most probable class per pixel). Several inputs, a folder or a glob pattern make "
        "a batch: OUT is a folder that gets one label TIFF per input (same file names) and "
        "summary.csv; a re-run skips the outputs that exist. An input or OUT ending in "
        ".zarr (OME-Zarr), or a TIFF over 2 GB, runs blockwise with bounded memory; "
        "--workers / --scheduler run the blocks or files on a dask cluster.",
    )
    p.add_argument(
        "--mode",
        choices=sorted(SEGMENTERS),
        help="Kind of model (default: instance; a bioimage.io package from another tool: "
        "what its output is).",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="Model folder, a built-in model name (nuclei), or a bioimage.io package (.zip, "
        "or a folder with rdf.yaml). A package from another tool runs on one image: class "
        "probabilities give semantic labels, foreground (+ boundary) instances by the "
        "watershed, anything else is written as a float image.",
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="Allow a package's architecture file (Python code) to run: needed for packages "
        "that hold only pytorch_state_dict weights. Without it such a package is refused "
        "with the file's name and sha256.",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT",
        help="Label image to write (one input: .tif; .ome.zarr for blockwise runs, or "
        "IMG.ome.zarr/labels/NAME to store them inside the input image) or folder (a batch). "
        "Never an input; an existing OUT is kept unless --overwrite.",
    )
    p.add_argument(
        "images", nargs="+", metavar="IMG",
        help="Images to segment (TIFF, PNG, OME-Zarr, ...), folders or quoted glob patterns.",
    )
    p.add_argument(
        "--probabilities",
        metavar="PROB.tif",
        help="Also write the class probabilities ([T,] K, ...).",
    )
    p.add_argument(
        "--timeseries", action="store_true", help="The first axis is time: segment frame by frame."
    )
    p.add_argument("--axes", help="Axes of IMG from TCZYX, e.g. TYX or ZYX (overrides guessing).")
    p.add_argument("--tile-size", type=int, help="Largest tile side in pixels (default 512).")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="--mode semantic: tiles per forward pass (default 4).")
    p.add_argument(
        "--tta",
        action="store_true",
        help="Test-time augmentation: average over the 8 flips / 90-degree rotations "
        "(8x slower, usually slightly more accurate).",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda", "mps"),
        help="Compute device (auto = CUDA, MPS, CPU).",
    )
    add_instance_options(p)
    add_block_options(p)
    p.set_defaults(handler=run)
