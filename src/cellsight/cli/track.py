"""``cellsight track``: link a segmented time-lapse into tracks with divisions."""

import json
from pathlib import Path

from cellsight.cli._options import add_config_options, given_values
from cellsight.cli._progress import ProgressBars
from cellsight.config.tracking import TrackingConfig

FORMATS = ("ctc", "geff", "csv")

#: TrackingConfig fields set from the command line (all but the format version)
CONFIG_OPTIONS = tuple(name for name in TrackingConfig.model_fields if name != "version")


def _config(args) -> TrackingConfig:
    return TrackingConfig(**given_values(args, CONFIG_OPTIONS))


def export(result, labels, out: Path, fmt: str) -> list[Path]:
    """Write a TrackingResult to ``out`` in one of :data:`FORMATS`."""
    from cellsight.core.tracking.convert import node_table, to_ctc, to_networkx

    if fmt == "ctc":
        from cellsight.io.ctc import write_ctc

        masks, table = to_ctc(result, labels)
        write_ctc(out, masks, table)
        return [out / "res_track.txt"]
    if fmt == "geff":
        from cellsight.io.geff_export import write_geff

        axes = ["t"] + list("zyx"[-result.detections.ndim :])
        return [write_geff(out / "tracks.geff", to_networkx(result), axes)]
    from cellsight.io.tracks_csv import write_tracks_csv

    return [write_tracks_csv(out / "tracks.csv", node_table(result))]


def run(args) -> int:
    """Read labels (and image), track, export, print a summary."""
    from cellsight.core.tracking import track
    from cellsight.io.ctc import read_series

    config = _config(args)  # bad values fail before any reading
    labels = read_series(args.labels)
    image = read_series(args.image) if args.image else None
    with ProgressBars("track") as progress:
        result = track(labels, image, config, progress=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = export(result, labels, out, args.format)
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
    p.add_argument("--out", required=True, help="Output folder (created if missing).")
    p.add_argument("--format", choices=FORMATS, default="ctc", help="Export format (default ctc).")
    p.add_argument("--image", help="Raw image series (same forms as LABELS) for intensities.")
    # --solver, --max-distance, --max-gap, --divisions / --no-divisions, costs, --time-limit
    add_config_options(p, TrackingConfig, CONFIG_OPTIONS)
    p.set_defaults(handler=run)
