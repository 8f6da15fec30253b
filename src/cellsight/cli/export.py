"""``cellsight export``: write a model as a bioimage.io model package (zip)."""

import json
import sys


def run(args) -> int:
    """Export MODEL to --out; print a JSON summary."""
    from cellsight.cli._outputs import check_output
    from cellsight.models import resolve_model

    folder = resolve_model(args.model)
    check_output(args.out, inputs=[folder], overwrite=bool(args.overwrite), suffixes=(".zip",),
                 what="model package")
    from cellsight.core.bmz.export import export_package

    path = export_package(args.model, args.out, overwrite=bool(args.overwrite),
                          name=args.name, authors=args.author or None, license=args.license)
    print(json.dumps({"model": str(args.model), "out": str(path),
                      "bytes": path.stat().st_size}, indent=2))
    print(f"Package written to {path}", file=sys.stderr)
    return 0


def register(sub) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser(
        "export",
        help="Write a model as a bioimage.io model package.",
        description="Write MODEL (a model folder, or a built-in name such as nuclei) as a "
        "bioimage.io model package (format 0.5 zip): state-dict weights with the U-Net's "
        "source, TorchScript weights, the normalisation and output processing, test tensors, "
        "a cover, the model card and cellsight's own config. bioimage.io tools, and cellsight "
        "itself (--model PKG.zip), run it.",
    )
    p.add_argument("model", metavar="MODEL", help="Model folder or built-in model name.")
    p.add_argument("--out", required=True, metavar="PKG.zip", help="The package to write.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing PKG.zip.")
    p.add_argument("--name", help="Package name (default: the model's name).")
    p.add_argument("--author", action="append", metavar="NAME",
                   help="An author (repeat for several; default: cellsight developers).")
    p.add_argument("--license", default="BSD-3-Clause",
                   help="SPDX licence of the weights (default: BSD-3-Clause, cellsight's).")
    p.set_defaults(handler=run)
