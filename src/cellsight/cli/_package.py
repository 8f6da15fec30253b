"""bioimage.io packages written by other tools as ``--model`` of ``segment`` and ``denoise``.

Packages that cellsight exported load as cellsight's own models and take the usual path;
any other package runs through :func:`cellsight.core.bmz.run.predict_package` on one image
in memory, or on each image of a batch (a folder, several files or a pattern, resumable,
``--workers`` / ``--scheduler`` as for cellsight's models), and its output is written by
what it is:

* class probabilities -> a semantic label TIFF (``segment``; ``--probabilities`` too);
* foreground (+ boundary) -> instances by the seeded watershed (``segment``; the
  ``--seed-threshold`` / ``--mask-threshold`` / ``--min-size`` options apply);
* an image like the input -> the restored image (float32);
* anything else -> the raw output as a float32 TIFF (``([T,] C, ...)``).

Architecture code inside a ``pytorch_state_dict``-only package runs only with ``--trust``;
without it the command stops with one line naming the file and its sha256.
"""

import sys

from cellsight.cli._options import flag_of

#: options of ``segment`` a package run uses (any other one given is refused)
_COMMON = ("axes", "timeseries", "tile_size", "device", "tta", "trust", "overwrite")
SEGMENT_USES = {
    "semantic": (*_COMMON, "probabilities"),
    "instance": (*_COMMON, "seed_threshold", "mask_threshold", "min_size", "split_by_shape"),
    "image": _COMMON,
    "raw": _COMMON,
}
#: every option of ``segment`` / ``denoise`` that a package run could be given
_ALL = ("axes", "tile_size", "device", "probabilities", "trust", "overwrite", "seed_threshold",
        "mask_threshold", "min_size", "split_by_shape", "timeseries", "batch_size", "tta", "diameter",
        "block_size", "workers", "scheduler", "retries")
_DEFAULTS = {"device": "auto"}

WHAT = {"semantic": "class probabilities", "instance": "foreground / boundary maps",
        "image": "an image like its input", "raw": "an output cellsight cannot interpret"}


def foreign_package(model: str):
    """The opened :class:`~cellsight.io.bmz.read.Package` if ``model`` is a package that
    cellsight did not write; None for model folders, built-in names and cellsight's own
    packages."""
    from cellsight.io.bmz.read import is_package, open_package

    if model is None or not is_package(model):
        return None
    package = open_package(model)
    return None if package.cellsight.get("task") else package


def check_trust_option(args, flag: str = "--model") -> None:
    """Refuse ``--trust`` where no package is given (it would change nothing)."""
    from cellsight.cli import CommandError
    from cellsight.io.bmz.read import is_package

    model = args.init if flag == "--from" else args.model
    if getattr(args, "trust", False) and not (model and is_package(model)):
        raise CommandError(f"--trust applies to bioimage.io packages ({flag} PKG.zip or a "
                           "folder with rdf.yaml); leave it out.")


def check_package_run(args, command: str, kind: str, uses) -> str:
    """Refuse what a package run cannot do or would ignore; ``batch``, ``blockwise`` or
    ``one`` (one image in memory)."""
    from cellsight.cli import CommandError

    from cellsight.cli._blocks import is_batch, is_blockwise

    run = "one"
    if is_batch(args.images):
        run = "batch"
        uses = (*uses, "workers", "scheduler", "retries")
        if getattr(args, "probabilities", None):
            raise CommandError("--probabilities writes one file; a batch writes one result "
                               "per image: leave it out.")
    elif is_blockwise(args.images[0], args.out, args):
        run = "blockwise"
        if kind == "raw":
            raise CommandError(f"--model {args.model} outputs {WHAT[kind]}: {command} runs it "
                               "on one image in memory only (a TIFF --out), not blockwise.")
        if getattr(args, "probabilities", None):
            raise CommandError("--probabilities is written for one image in memory; a "
                               "blockwise run writes the labels only: leave it out.")
        if getattr(args, "axes", None) or getattr(args, "timeseries", False):
            raise CommandError(f"{'--axes' if args.axes else '--timeseries'} applies to images "
                               "in memory; a blockwise run reads the axes of the OME-Zarr / "
                               "TIFF: leave it out.")
        uses = (*uses, "block_size", "workers", "scheduler", "retries")
    for name in _ALL:
        value = getattr(args, name, None)
        if name in uses or value in (None, False, _DEFAULTS.get(name)):
            continue
        raise CommandError(f"{flag_of(name)} does not apply to this package (its output is "
                           f"{WHAT[kind]}); leave it out.")
    return run


def package_blockwise(args, command: str, post=None) -> int:
    """One big image (OME-Zarr in or out, a TIFF over the memory limit, or --block-size)
    through the package block by block (:func:`~cellsight.core.bmz.blocks.
    predict_package_blockwise`); OUT is an OME-Zarr (or ``IMAGE.ome.zarr/labels/NAME``)."""
    import json
    from types import SimpleNamespace

    from cellsight.cli._blocks import _into_labels, _zarr_out, block_config, check_outputs
    from cellsight.cli._progress import ProgressBars
    from cellsight.core.bmz.blocks import predict_package_blockwise

    check_outputs(args, batch=False, blockwise=True)
    model = load(args)  # the core refuses what cannot run blockwise (one clear line)

    def run(out):
        return predict_package_blockwise(
            model, args.images[0], blocks=block_config(args), out=out, post=post,
            tile_size=getattr(args, "tile_size", None) or 0, device=args.device,
            tta=bool(getattr(args, "tta", False)), progress=progress)

    with ProgressBars(command) as progress:
        if model.kind in ("semantic", "instance"):
            result = _into_labels(run, args)
        else:
            result = run(_zarr_out(args.out))
    info = {"out": str(result.path), "blocks": result.blocks,
            "seconds": round(result.seconds, 1)}
    if model.kind == "instance":
        info["objects"] = result.n_objects
    print(json.dumps(summary(args, model, SimpleNamespace(kind=model.kind), **info), indent=2))
    print(f"{'Labels' if model.kind in ('semantic', 'instance') else 'Output'} written to "
          f"{result.path}", file=sys.stderr)
    return 0


def package_batch(args, command: str, post=None) -> int:
    """A folder / list / pattern of images through the package, resumable (summary.csv)."""
    from cellsight.cli._blocks import check_outputs, run_batch_command
    from cellsight.core.blocks.files import package_file

    check_outputs(args, batch=True, blockwise=False)
    model = load(args)  # refuse an untrusted or broken package before any file is read
    return run_batch_command(args, command, package_file, args.model, bool(args.trust), post,
                             args.device, timeseries_axes(args, model),
                             getattr(args, "tile_size", None) or 0,
                             bool(getattr(args, "tta", False)))


def load(args):
    """The package's network (architecture code only with ``--trust``)."""
    from cellsight.core.bmz.run import load_package

    return load_package(args.model, trust=bool(args.trust), prefer_cellsight=False)


def timeseries_axes(args, model) -> str | None:
    """``--axes``, or with ``--timeseries`` T then the package's spatial axes (None: guess)."""
    from cellsight.cli import CommandError

    if getattr(args, "timeseries", False):
        if args.axes and not args.axes.upper().startswith("T"):
            raise CommandError(f"--timeseries says the first axis is time, but --axes "
                               f"{args.axes} does not start with T: give one of them.")
        return args.axes.upper() if args.axes else "T" + model.spatial.upper()
    return args.axes.upper() if args.axes else None


def _axes(args, image, model=None) -> str | None:
    if args.axes or getattr(args, "timeseries", False):
        return timeseries_axes(args, model)
    axes = (getattr(image, "axes", "") or "").upper()
    if axes and len(axes) == image.data.ndim and set(axes) <= set("TCZYX"):
        return axes
    return None


def predict(args, model, image, post=None):
    """Run the package over the image (tiled) with progress bars."""
    from cellsight.cli._progress import ProgressBars
    from cellsight.core.bmz.run import predict_package

    with ProgressBars(args.command_name) as progress:
        return predict_package(model, image.data, axes=_axes(args, image, model),
                               tile_size=getattr(args, "tile_size", None) or 0,
                               device=args.device, post=post,
                               tta=bool(getattr(args, "tta", False)), progress=progress)


def _spatial_axes(model, array, channel: bool) -> str:
    spatial = model.spatial.upper()
    extra = array.ndim - len(spatial) - channel
    return ("T" if extra == 1 else "") + ("C" if channel else "") + spatial


def write_float(out, array, channel: bool, model) -> list[int]:
    """Write a float32 result with the axes it has (T, C, spatial)."""
    import numpy as np

    from cellsight.io.tiff import write_image

    array = np.asarray(array, np.float32)
    axes = _spatial_axes(model, array, channel)
    write_image(out, array, axes=axes if len(axes) == array.ndim else None)
    return list(array.shape)


def summary(args, model, result, **extra) -> dict:
    """The JSON summary of a package run."""
    record = model.meta.get("package", {})
    return {"out": str(args.out), "package": record.get("name"),
            "version": record.get("version"), "weights": model.weights, "output": result.kind,
            **extra}


def segment_package(args, package) -> int:
    """``cellsight segment --model PKG`` for a package from another tool (one image)."""
    import json

    import numpy as np

    from cellsight.cli import CommandError
    from cellsight.cli._arrays import read_any
    from cellsight.cli._blocks import check_outputs
    from cellsight.cli._outputs import TIFF, check_distinct, check_output
    from cellsight.config.instances import InstancePostConfig
    from cellsight.core.bmz.run import output_kind
    from cellsight.io.tiff import write_labels

    kind = output_kind(package)
    if args.mode is not None and kind in ("semantic", "instance") and args.mode != kind:
        raise CommandError(f"--model {args.model} outputs {WHAT[kind]} ({kind}); run it with "
                           f"--mode {kind} or leave --mode out.")
    if args.mode is not None and kind not in ("semantic", "instance"):
        raise CommandError(f"--model {args.model} outputs {WHAT[kind]}, not a segmentation; "
                           "leave --mode out (its output is written as a float image).")
    run = check_package_run(args, "segment", kind, SEGMENT_USES[kind])
    post = InstancePostConfig(**{n: getattr(args, n) for n in
                                 ("seed_threshold", "mask_threshold", "min_size",
                                  "split_by_shape")
                                 if getattr(args, n, None) is not None})
    if run == "batch":
        return package_batch(args, "segment", post)
    if run == "blockwise":
        return package_blockwise(args, "segment", post)
    check_outputs(args, batch=False, blockwise=False)
    if args.probabilities:
        check_output(args.probabilities, inputs=[args.images[0]],
                     overwrite=bool(args.overwrite), suffixes=TIFF, what="probabilities",
                     flag="--probabilities")
        check_distinct(("--out", args.out), ("--probabilities", args.probabilities))
    model = load(args)
    image = read_any(args.images[0])
    args.command_name = "segment"
    result = predict(args, model, image, post)
    if result.labels is not None:
        labels = result.labels
        write_labels(args.out, labels, axes=_spatial_axes(model, labels, False))
        info = {"shape": list(labels.shape)}
        if kind == "semantic":
            counts = np.bincount(labels.ravel())
            info["pixels_per_class"] = {int(c): int(n) for c, n in enumerate(counts) if n}
            if args.probabilities:
                write_float(args.probabilities, result.output, True, model)
        else:
            info["objects"] = int(labels.max())
        print(json.dumps(summary(args, model, result, **info), indent=2))
        print(f"Labels written to {args.out}", file=sys.stderr)
        return 0
    shape = write_float(args.out, *_float_result(result), model)
    print(json.dumps(summary(args, model, result, shape=shape), indent=2))
    print(f"The package's output is {WHAT[kind]}: written as a float32 image to {args.out}",
          file=sys.stderr)
    return 0


def _float_result(result):
    """The array to write for an image / raw output, and whether it has a channel axis."""
    if result.image is not None:
        return result.image, result.image.ndim == result.output.ndim
    return result.output, True


def denoise_package(args, package) -> int:
    """``cellsight denoise --model PKG`` for a package from another tool (one image)."""
    import json

    from cellsight.cli import CommandError
    from cellsight.cli._arrays import read_any
    from cellsight.cli._blocks import check_outputs
    from cellsight.core.bmz.run import output_kind

    kind = output_kind(package)
    if kind in ("semantic", "instance"):
        raise CommandError(f"--model {args.model} outputs {WHAT[kind]} ({kind} segmentation); "
                           f"run it with cellsight segment --model {args.model}.")
    run = check_package_run(args, "denoise", kind, ("axes", "device", "trust", "overwrite"))
    if run == "batch":
        return package_batch(args, "denoise")
    if run == "blockwise":
        return package_blockwise(args, "denoise")
    check_outputs(args, batch=False, blockwise=False)
    model = load(args)
    image = read_any(args.images[0])
    args.command_name = "denoise"
    args.tile_size = 0
    result = predict(args, model, image)
    if result.image is not None and result.image.shape == image.data.shape:
        from cellsight.io.tiff import write_image

        write_image(args.out, result.image.astype("float32"), axes=image.axes,
                    scale=image.scale)
        shape = list(result.image.shape)
        note = f"Denoised image written to {args.out}"
    else:
        shape = write_float(args.out, *_float_result(result), model)
        note = (f"The package's output is {WHAT[kind]}: written as a float32 image to "
                f"{args.out}")
    print(json.dumps(summary(args, model, result, shape=shape), indent=2))
    print(note, file=sys.stderr)
    return 0


#: ``cellsight train`` options a package fine-tuning does not use
_TRAIN_UNUSED = ("annotated", "diameter", "resume", "zero_is_background", "scale", "n_classes",
                 "depth", "base_channels", "overwrite", "export")


def finetune_package_task(args, package) -> int:
    """``cellsight train --from PKG --out NEW.zip`` for a package from another tool."""
    import json

    from cellsight.cli import CommandError
    from cellsight.cli._instance import _finetune_config
    from cellsight.cli._interrupt import StopOnSignal
    from cellsight.cli._outputs import check_output
    from cellsight.cli._progress import ProgressBars
    from cellsight.core.bmz.finetune import fine_tune_package
    from cellsight.core.bmz.run import output_kind
    from cellsight.core.progress import Cancelled

    kind = output_kind(package)
    if kind not in ("semantic", "instance"):
        raise CommandError(f"--from {args.init} outputs {WHAT[kind]}; cellsight fine-tunes "
                           "packages whose output is class probabilities or foreground / "
                           "boundary maps.")
    if args.task != kind:
        raise CommandError(f"--from {args.init} outputs {WHAT[kind]} ({kind}): use --task "
                           f"{kind}.")
    for name in _TRAIN_UNUSED:
        if getattr(args, name, None) not in (None, False):
            raise CommandError(f"{flag_of(name)} does not apply to fine-tuning a package from "
                               "another tool; leave it out.")
    config = _finetune_config(args)
    check_output(args.out, inputs=[*args.images, *args.labels, args.init], suffixes=(".zip",),
                 what="the fine-tuned package (a new version of --from)")
    from cellsight.cli._arrays import read_any

    with StopOnSignal() as stop, ProgressBars("fine-tune") as progress:
        try:
            result = fine_tune_package(
                [read_any(p).data for p in args.images], [read_any(p).data for p in args.labels],
                config, package=args.init, trust=bool(args.trust), out=args.out,
                progress=stop.watch(progress), should_stop=stop)
        except Cancelled as exc:
            progress.close()
            print(f"cellsight: {exc}", file=sys.stderr)
            return stop.exit_code
    print(json.dumps({"package": str(result.package), "task": kind, "from": str(args.init),
                      "steps_done": result.steps_done, "train_seconds": result.seconds,
                      "held_out": result.held_out, "metric": result.metric,
                      "before": round(result.before, 4), "after": round(result.after, 4),
                      "better": result.after >= result.before, "message": result.message},
                     indent=2))
    print(result.message, file=sys.stderr)
    return 0
