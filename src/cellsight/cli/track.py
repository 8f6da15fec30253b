"""``cellsight track``: link a segmented time-lapse into tracks with divisions."""

import json
import os
from pathlib import Path

from cellsight.cli._options import add_config_options, given_values
from cellsight.cli._progress import ProgressBars
from cellsight.config.tracking import TrackingConfig

FORMATS = ("ctc", "geff", "csv")

#: TrackingConfig fields set from the command line (all but the format version)
CONFIG_OPTIONS = tuple(name for name in TrackingConfig.model_fields if name != "version")


def _config(args) -> TrackingConfig:
    return TrackingConfig(**given_values(args, CONFIG_OPTIONS))


#: the file each format writes into OUT (CTC: OUT itself, written as a unit)
EXPORT_NAMES = {"geff": "tracks.geff", "csv": "tracks.csv"}


def _foreign_to_results(folder: Path) -> list[str]:
    """Entries of ``folder`` that no ``cellsight track`` export wrote."""
    from cellsight.io.atomic import is_temporary
    from cellsight.io.ctc import is_result_entry

    known = set(EXPORT_NAMES.values())
    return [n for n in os.listdir(folder)
            if not (is_result_entry(n) or n in known or is_temporary(n))]


def check_out(args) -> None:
    """Refuse a bad OUT before tracking: an input, an earlier result without --overwrite, ..."""
    from cellsight.cli._outputs import check_output

    inputs = [args.labels, args.image]
    if args.format == "ctc":  # OUT is replaced as a unit: only an earlier result may go
        check_output(args.out, inputs=inputs, kind="folder", overwrite=args.overwrite,
                     replaceable=_foreign_to_results, inside_ok=True)
        return
    check_output(args.out, inputs=inputs, kind="batch", holds="none", inside_ok=True)
    check_output(Path(args.out) / EXPORT_NAMES[args.format], inputs=inputs,
                 kind="folder" if args.format == "geff" else "file",
                 overwrite=args.overwrite, inside_ok=True)


def export(result, labels, out: Path, fmt: str, overwrite: bool = True) -> list[Path]:
    """Write a TrackingResult to ``out`` in one of :data:`FORMATS`."""
    from cellsight.core.tracking.convert import node_table, to_ctc, to_networkx

    if fmt == "ctc":
        from cellsight.io.ctc import write_ctc

        masks, table = to_ctc(result, labels)
        write_ctc(out, masks, table)
        return [out / "res_track.txt"]
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "geff":
        from cellsight.io.geff_export import write_geff

        axes = ["t"] + list("zyx"[-result.detections.ndim :])
        return [write_geff(out / EXPORT_NAMES["geff"], to_networkx(result), axes,
                           overwrite=overwrite)]
    from cellsight.io.tracks_csv import write_tracks_csv

    return [write_tracks_csv(out / EXPORT_NAMES["csv"], node_table(result))]


def read_stack(path: str, axes: str | None, flag: str):
    """A time series from a T-stack file or a folder of frames; a Z-stack is refused.

    A file whose axes say Z and no T is a Z-stack, not a time series: ``--axes TYX`` /
    ``TZYX`` says otherwise. Files that do not name their axes are read as T-stacks.
    """
    from cellsight.cli import CommandError
    from cellsight.io.ctc import read_series
    from cellsight.io.tiff import read_image

    if Path(path).is_dir() or not Path(path).exists():
        data = read_series(path)
        if axes and len(axes) != data.ndim:
            raise CommandError(f"--axes {axes} has {len(axes)} letters; {flag} {path} is a "
                               f"series of shape {data.shape}.")
        return data
    image = read_image(path)
    if axes:
        if len(axes) != image.data.ndim:
            raise CommandError(f"--axes {axes} has {len(axes)} letters; {flag} {path} has "
                               f"{image.data.ndim} dimensions (shape {image.data.shape}).")
        return image.data
    if "T" not in image.axes and "Z" in image.axes:
        raise CommandError(f"{flag} {path} is not a time series: its axes are "
                           f"{image.axes} (no T). Tracking needs TYX or TZYX; if the first "
                           "axis is time after all, say so with --axes TYX (or TZYX).")
    return image.data


def run(args) -> int:
    """Read labels (and image), track, export, print a summary."""
    from cellsight.core.tracking import track

    config = _config(args)  # bad values fail before any reading
    check_out(args)
    labels = read_stack(args.labels, args.axes, "LABELS")
    image = read_stack(args.image, args.axes, "--image") if args.image else None
    with ProgressBars("track") as progress:
        result = track(labels, image, config, progress=progress)
    written = export(result, labels, Path(args.out), args.format, overwrite=args.overwrite)
    n_div = sum(1 for kids in result.children().values() if len(kids) == 2)
    summary = {
        "tracks": result.n_tracks,
        "divisions": n_div,
        "detections": len(result.detections),
        "written": [str(p) for p in written],
        **result.parameters,
    }
    print(json.dumps(summary, indent=2))
    return 0


def register(sub) -> None:
    """Add the ``track`` subcommand."""
    p = sub.add_parser(
        "track",
        help="Track segmented cells over time (divisions included).",
        description="Link the objects of a labels time series into tracks with divisions "
        "and export them. LABELS is a T-stack TIFF or a folder of per-frame TIFFs (CTC "
        "style). With --format ctc, OUT receives maskTTT.tif and res_track.txt.",
    )
    p.add_argument("labels", metavar="LABELS", help="T-stack TIFF or folder of frame TIFFs.")
    p.add_argument(
        "--out", required=True,
        help="Output folder (created if missing). It must not hold LABELS or --image; an "
        "earlier result in it is kept unless --overwrite.",
    )
    p.add_argument("--format", choices=FORMATS, default="ctc", help="Export format (default ctc).")
    p.add_argument(
        "--overwrite", action="store_true",
        help="Replace an earlier result in OUT (ctc: the whole folder, if it holds only "
        "track results; geff / csv: tracks.geff / tracks.csv).",
    )
    p.add_argument("--image", help="Raw image series (same forms as LABELS) for intensities.")
    p.add_argument(
        "--axes", choices=("TYX", "TZYX"),
        help="Axes of a LABELS (and --image) stack file, for files that name no axes or name "
        "them wrongly; a file that says ZYX is refused without it.",
    )
    # --solver, --max-distance, --max-gap, --divisions / --no-divisions, costs, --time-limit
    add_config_options(p, TrackingConfig, CONFIG_OPTIONS)
    p.set_defaults(handler=run)
