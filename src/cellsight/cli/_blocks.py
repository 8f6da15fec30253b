"""Big images and batches for ``cellsight segment`` and ``cellsight denoise``.

The same options on both commands: ``--block-size``, ``--workers N`` (a local dask cluster)
or ``--scheduler ADDRESS`` (a running one), ``--overwrite``. An input or output ending in
``.zarr`` means OME-Zarr and runs blockwise; a TIFF bigger than :data:`MEMORY_LIMIT` is read
lazily and runs blockwise too. Several inputs, a folder or a glob pattern make a batch:
one output per file in the ``--out`` folder, in parallel on the same engine, resumable,
with ``summary.csv``.
"""

import glob
import json
import os
import sys
from pathlib import Path

from cellsight.cli._options import add_config_options
from cellsight.cli._progress import ProgressBars

#: inputs larger than this (bytes on disk) are read block by block
MEMORY_LIMIT = int(os.environ.get("CELLSIGHT_MEMORY_LIMIT", 2 * 1024**3))
BLOCK_OPTIONS = ("block_size", "workers", "scheduler", "retries", "overwrite")


def add_block_options(parser) -> None:
    """The big-data and engine options (fields of BlockConfig)."""
    from cellsight.config.blocks import BlockConfig

    add_config_options(parser, BlockConfig, BLOCK_OPTIONS, prefix="Big data / batch: ")


def block_config(args):
    """The BlockConfig the options describe."""
    from cellsight.config.blocks import BlockConfig

    given = {k: getattr(args, k) for k in BLOCK_OPTIONS if getattr(args, k, None) is not None}
    return BlockConfig(**given)


def _is_zarr(path) -> bool:
    return str(path).rstrip("/").lower().endswith(".zarr")


def _size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def is_batch(images: list[str]) -> bool:
    """Several inputs, a folder (not a .zarr) or a glob pattern."""
    if len(images) != 1:
        return True
    one = images[0]
    if _is_zarr(one):
        return False
    if not Path(one).exists() and any(c in one for c in "*?[") and not glob.glob(one):
        raise ValueError(f"No file matches the pattern {one}.")  # not taken for a file name
    return Path(one).is_dir() or (not Path(one).exists() and bool(glob.glob(one)))


def is_blockwise(image: str, out: str, args) -> bool:
    """One big image: OME-Zarr in or out, a TIFF over the memory limit, or --block-size."""
    if getattr(args, "block_size", None) is not None:
        return True
    return _is_zarr(image) or _is_zarr(out) or _size_on_disk(Path(image)) > MEMORY_LIMIT


def check_outputs(args, batch: bool, blockwise: bool) -> None:
    """Refuse a bad ``--out`` of ``segment`` / ``denoise`` before any work (see _outputs).

    One image: a TIFF (``.zarr`` for a blockwise run; ``IMG.ome.zarr/labels/NAME`` puts
    blockwise labels into the input image), kept unless ``--overwrite``. A batch: a
    folder that holds none of the inputs; its finished files are skipped on a re-run.
    """
    from cellsight.cli._outputs import TIFF, ZARR, check_output

    overwrite = bool(getattr(args, "overwrite", False))
    if batch:
        from cellsight.cli import CommandError
        from cellsight.core.blocks.batch import expand_inputs

        check_output(args.out, inputs=[*args.images, *expand_inputs(args.images)],
                     kind="batch", inside_ok=True)
        if str(args.out).lower().endswith((*TIFF, ".png", ".jpg", ".jpeg")):
            one = args.images[0]
            given = (f"{len(args.images)} inputs were given" if len(args.images) > 1
                     else f"{one} is a folder" if Path(one).is_dir()
                     else f"{one} matches several files")
            raise CommandError(f"--out {args.out} names an image file, but {given}: a batch "
                               "writes one result per image into a folder; give --out a "
                               "folder name.")
        return
    image = args.images[0]
    if not blockwise:
        check_output(args.out, inputs=[image], overwrite=overwrite, suffixes=TIFF + ZARR,
                     what="one image's result")
        return
    target = labels_target(args.out)
    check_output(args.out, inputs=[image], kind="folder", overwrite=overwrite,
                 suffixes=None if target else ZARR, what="a blockwise result (OME-Zarr)",
                 inside_ok=target is not None)


def _engine(config):
    from cellsight.core.blocks.engine import Engine

    return Engine(workers=config.workers or None, scheduler=config.scheduler or None,
                  retries=config.retries)


def run_batch_command(args, label: str, work, *work_args) -> int:
    """Run ``work(item, *work_args)`` over the inputs; print the table; 1 if a file failed."""
    from cellsight.core.blocks.batch import expand_inputs, plan_outputs, run_batch

    config = block_config(args)
    out_dir = Path(args.out)
    items = plan_outputs(expand_inputs(args.images), out_dir, ".tif", keep_tif_names=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _engine(config) as engine, ProgressBars(label) as progress:
        rows = run_batch(engine, work, items, *work_args, out_dir=out_dir,
                         overwrite=config.overwrite, progress=progress)
    counts = {s: sum(r.status == s for r in rows) for s in ("done", "skipped", "error")}
    print(json.dumps({"out": str(out_dir), "files": len(rows), **counts,
                      "summary": str(out_dir / "summary.csv")}, indent=2))
    for row in rows:
        if row.status == "error":
            print(f"cellsight: {row.file}: {row.error}", file=sys.stderr)
    return 1 if counts["error"] else 0


def labels_target(out: str):
    """``(image, name)`` when OUT is ``IMAGE.ome.zarr/labels/NAME`` of an existing image."""
    from cellsight.io.omezarr import is_ome_zarr

    path = Path(out)
    image = path.parent.parent
    if path.parent.name == "labels" and _is_zarr(image) and is_ome_zarr(image):
        return image, path.name
    return None


def _into_labels(run, args, **kwargs):
    """Run ``run(out=...)``; OUT inside a source image's labels/ group is written there.

    The blockwise result goes to a temporary OME-Zarr beside the image first, then into
    ``IMAGE.ome.zarr/labels/NAME`` (NGFF labels, listed in the group) block by block.
    """
    import shutil
    import tempfile

    from cellsight.io.omezarr import add_labels, read_ome_zarr

    target = labels_target(args.out)
    if target is None:
        return run(out=_zarr_out(args.out), **kwargs)
    image, name = target
    work = Path(tempfile.mkdtemp(prefix=".cellsight-", dir=image.parent))
    try:
        result = run(out=str(work / f"{name}.ome.zarr"), **kwargs)
        result.path = add_labels(image, name, read_ome_zarr(result.path).data,
                                 overwrite=block_config(args).overwrite)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def segment_blockwise(args, model, config, post) -> dict:
    """One big image through :func:`segment_instances_blockwise`; OUT is an OME-Zarr.

    OUT may be ``IMAGE.ome.zarr/labels/NAME``: the labels then go into the source image.
    """
    from cellsight.core.blocks.instances import segment_instances_blockwise

    with ProgressBars("segment") as progress:
        result = _into_labels(
            lambda out: segment_instances_blockwise(model, args.image, config,
                                                    block_config(args), out=out, post=post,
                                                    progress=progress), args)
    return {"out": str(result.path), "objects": result.n_objects, "blocks": result.blocks,
            "seconds": round(result.seconds, 1), "diameter": round(result.diameter, 2)}


def semantic_blockwise(args, model) -> dict:
    """One big image through :func:`predict_semantic_blockwise` (OUT as for instances)."""
    from cellsight.core.blocks.dense import predict_semantic_blockwise

    with ProgressBars("segment") as progress:
        result = _into_labels(
            lambda out: predict_semantic_blockwise(model, args.image, block_config(args),
                                                   out=out, progress=progress), args)
    return {"out": str(result.path), "blocks": result.blocks, "seconds": round(result.seconds, 1)}


def denoise_blockwise(args, model) -> dict:
    """One big image through :func:`cellsight.core.blocks.dense.denoise_blockwise`."""
    from cellsight.core.blocks.dense import denoise_blockwise as run

    with ProgressBars("denoise") as progress:
        result = run(model, args.image, block_config(args), out=_zarr_out(args.out),
                     progress=progress)
    return {"out": str(result.path), "blocks": result.blocks, "seconds": round(result.seconds, 1)}


def _zarr_out(out: str) -> str:
    if not _is_zarr(out):
        raise ValueError(f"A blockwise result is written as OME-Zarr: give --out a name "
                         f"ending in .ome.zarr (got {out}).")
    return out
