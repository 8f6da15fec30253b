"""Instance segmentation for ``cellsight train --task instance`` and ``cellsight segment``.

Instance models train through the semantic path (see
:mod:`cellsight.core.segmentation.instance_model`); these are the task / mode entries that the
``train`` and ``segment`` commands dispatch to.
"""

from dataclasses import asdict

from cellsight.cli._arrays import read_any
from cellsight.cli._interrupt import StopOnSignal
from cellsight.cli._options import add_config_options, config_values
from cellsight.cli._progress import ProgressBars


def _instance_config(args):
    from cellsight.config.instances import InstanceConfig

    return InstanceConfig.model_validate(config_values(InstanceConfig, args))


#: ``cellsight train`` options -> FineTuneConfig fields (used with ``--from``)
FINETUNE_OPTIONS = {
    "steps": "steps",
    "learning_rate": "learning_rate",
    "batch_size": "batch_size",
    "patch_size": "patch_size",
    "seed": "seed",
    "device": "device",
    "time_limit": "time_limit_minutes",
    "holdout": "holdout_fraction",
}


def _finetune_config(args):
    from cellsight.config.finetune import FineTuneConfig

    for name, flag in (("config", "--config"), ("val_fraction", "--val-fraction")):
        if getattr(args, name) is not None:
            raise ValueError(f"{flag} is for training from scratch; with --from the "
                             "fine-tuning options apply (--steps, --learning-rate, "
                             "--time-limit, --holdout ...).")
    values = {field: getattr(args, opt) for opt, field in FINETUNE_OPTIONS.items()
              if getattr(args, opt, None) is not None}
    return FineTuneConfig(**values)


def _annotated_masks(args):
    if not args.annotated:
        return None
    if len(args.annotated) != len(args.labels):
        raise ValueError(f"Give one --annotated mask per --labels file ({len(args.labels)} "
                         f"labels, {len(args.annotated)} masks).")
    return [read_any(p).data != 0 for p in args.annotated]


def finetune_instance_task(args, stop=None) -> dict:
    """Fine-tune ``--from`` on the labels as corrections (same code as the dock widget).

    ``stop`` (a :class:`~cellsight.cli._interrupt.StopOnSignal`) ends training early:
    :class:`~cellsight.core.progress.Cancelled` then carries the model so far, unsaved
    (see :func:`save_stopped_finetune`).
    """
    from cellsight.core.curation.finetune import fine_tune

    stop = stop or StopOnSignal()
    with ProgressBars("fine-tune") as progress:
        result = fine_tune(
            [read_any(p).data for p in args.images],
            [read_any(p).data for p in args.labels],
            _finetune_config(args),
            base=args.init,
            annotated=_annotated_masks(args),
            diameter=getattr(args, "diameter", None) or 0.0,
            out_dir=args.out,
            progress=stop.watch(progress),
            should_stop=stop,
        )
    return {"model": str(result.model_dir), "task": "instance", "from": str(args.init),
            "diameter": result.model.config.diameter, "steps_done": result.steps_done,
            "train_seconds": result.seconds, "held_out": result.held_out,
            "ap50_before": round(result.before_ap, 4), "ap50_after": round(result.after_ap, 4),
            "better": result.kept == "new", "message": result.message,
            "uncorrected_check": (None if result.consistency is None
                                  else asdict(result.consistency))}


def save_stopped_finetune(args, model) -> None:
    """Save a fine-tuning run stopped by a signal to ``--out``, marked as stopped."""
    steps = (model.meta.get("metrics") or {}).get("steps_done")
    model.meta = {**model.meta, "fine_tune": {
        "from": str(args.init), "stopped_at_step": steps,
        "note": "stopped before the held-out check: not compared with the --from model"}}
    model.save(args.out)


def train_instance_task(args, stop=None) -> dict:
    """Train an instance model, or fine-tune one (``--from nuclei`` or a model folder).

    ``stop``: as for :func:`cellsight.cli.train.train_semantic_task` (a stopped
    training from scratch saves its model to ``--out``; a stopped fine-tuning does not).
    """
    from cellsight.core.segmentation.instance_model import train_instances

    if args.zero_is_background:
        raise ValueError("--zero-is-background is for semantic models; instance labels use 0 "
                         "for background already.")
    if args.resume:
        raise ValueError("--resume is not available for instance models: --from MODEL_DIR "
                         "fine-tunes from a model's weights.")
    stop = stop or StopOnSignal()
    if args.init:
        return finetune_instance_task(args, stop)
    annotated = _annotated_masks(args)
    with ProgressBars("train") as progress:
        model = train_instances(
            [read_any(p).data for p in args.images],
            [read_any(p).data for p in args.labels],
            _instance_config(args),
            annotated=annotated,
            out_dir=args.out,
            progress=stop.watch(progress),
            should_stop=stop,
        )
    metrics = {k: v for k, v in model.meta["metrics"].items() if k != "history"}
    return {"model": str(args.out), "task": "instance", "diameter": model.config.diameter,
            **metrics}


def instance_settings(args, model, mode: str):
    """The InstancePredictConfig and InstancePostConfig that ``cellsight segment`` asks for."""
    from cellsight.config.instances import InstancePredictConfig

    config = InstancePredictConfig(
        mode=mode,
        diameter=args.diameter or 0.0,
        estimate_diameter=args.diameter is None and model.config.diameter > 0,
        tile_size=args.tile_size or 512,
        device=args.device,
        test_time_augmentation=args.tta,
    )
    post = model.config.postprocessing.model_copy()
    for name in ("seed_threshold", "mask_threshold", "min_size", "split_by_shape"):
        if getattr(args, name) is not None:
            setattr(post, name, getattr(args, name))
    return config, post


def segment_instance(args) -> dict:
    """Segment one image into separated objects; write a label TIFF of its spatial shape."""
    from cellsight.core.arrays.axes import check_axes
    from cellsight.core.blocks.files import instance_mode, read_gray
    from cellsight.core.segmentation.instance_model import (
        InstanceModel,
        instances_from_maps,
        predict_instance_maps,
    )
    from cellsight.io.tiff import write_labels

    model = InstanceModel.load(args.model)
    data, axes = read_gray(args.image)
    if args.axes:
        axes = check_axes(args.axes, data.shape)
    mode = instance_mode(axes, data.ndim, model.config.unet.ndim, args.timeseries)
    config, post = instance_settings(args, model, mode)
    with ProgressBars("segment") as progress:
        maps = predict_instance_maps(model, data, config, progress=progress)
    labels = instances_from_maps(maps, post)
    out_axes = {"2d": "YX", "3d": "ZYX", "t": "TYX" if labels.ndim == 3 else "TZYX"}[mode]
    write_labels(args.out, labels, axes=out_axes)
    per_frame = [int(f.max()) for f in labels] if mode == "t" else [int(labels.max())]
    return {"out": str(args.out), "shape": list(labels.shape), "mode": mode,
            "objects": per_frame if mode == "t" else per_frame[0]}


def segment_instance_blockwise(args) -> dict:
    """One big image (OME-Zarr / big TIFF) blockwise; OUT is an OME-Zarr."""
    from cellsight.cli._blocks import segment_blockwise
    from cellsight.core.arrays.axes import check_axes
    from cellsight.core.blocks.files import instance_mode
    from cellsight.core.segmentation.instance_model import InstanceModel
    from cellsight.io.omezarr import open_lazy

    model = InstanceModel.load(args.model)
    lazy = open_lazy(args.image)
    axes = check_axes(args.axes, lazy.data.shape) if args.axes else lazy.axes
    if "C" in axes:
        raise ValueError(f"{args.image} has channels (axes {axes}); instance segmentation "
                         "takes one channel: convert that channel alone first.")
    mode = instance_mode(axes, lazy.data.ndim, model.config.unet.ndim, args.timeseries)
    config, post = instance_settings(args, model, mode)
    return segment_blockwise(args, model, config, post)


def segment_instance_batch(args) -> int:
    """Many files: one label TIFF each in the --out folder, resumable (summary.csv)."""
    from cellsight.cli._blocks import run_batch_command
    from cellsight.core.blocks.files import segment_file
    from cellsight.core.segmentation.instance_model import InstanceModel

    model = InstanceModel.load(args.model)
    config, post = instance_settings(args, model, "2d")  # the mode is set per file
    return run_batch_command(args, "segment", segment_file, model, config, post,
                             args.timeseries)


def add_instance_options(parser) -> None:
    """Options of ``cellsight segment`` that only instance models use."""
    from cellsight.config.instances import InstancePostConfig

    parser.add_argument(
        "--diameter", type=float,
        help="Instance: typical nucleus diameter in pixels (the image is rescaled to the "
        "model's size); default: measured by the model.",
    )
    # the defaults are the model's own (its config.yaml), so the help gives only the bounds
    add_config_options(parser, InstancePostConfig, ("seed_threshold", "mask_threshold",
                                                    "min_size", "split_by_shape"),
                       prefix="Instance: ", show_default=False)
