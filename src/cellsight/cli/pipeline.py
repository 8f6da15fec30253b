"""``cellsight pipeline``: run the whole pipeline headless on the bundled samples."""

import json
import sys

from cellsight.cli._progress import ProgressBars


def run(args) -> int:
    """Run the pipeline and print the summary."""
    from cellsight.cli._outputs import check_output
    from cellsight.pipeline import run_pipeline

    # a folder of results; files of the same names in it are replaced, nothing else
    check_output(args.out, kind="batch", holds="none")

    with ProgressBars("pipeline") as progress:
        summary = run_pipeline(args.out, progress=progress)
    print(json.dumps(summary, indent=2))
    print("\n".join(summary["summary"]), file=sys.stderr)
    print(f"Results written to {args.out} (overview: {args.out}/overview.png, summary: "
          f"{args.out}/summary.txt)", file=sys.stderr)
    return 0


def register(sub) -> None:
    """Add the ``pipeline`` subcommand."""
    p = sub.add_parser(
        "pipeline",
        help="Run denoise -> segment -> track on the bundled sample data.",
        description="Run the whole cellsight pipeline headless on the bundled sample data "
        "(denoise, segment, segment and track a time-lapse) and write TIFF results, the "
        "tracks (CTC folder, GEFF), a lineage figure, overview.png, summary.txt and "
        "summary.json to --out.",
    )
    p.add_argument("--out", required=True, help="Output folder (created if missing).")
    p.set_defaults(handler=run)
