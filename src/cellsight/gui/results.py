"""Open a pipeline output folder in napari: ``python -m cellsight.gui.results DIR``."""

import json
import sys
from pathlib import Path


def open_results(viewer, out_dir) -> list:
    """Add the bundled inputs and every result listed in ``summary.json`` as layers (tracks
    as a Tracks layer)."""
    from cellsight.io.tiff import read_image
    from cellsight.plugin.samples import load_sample

    out = Path(out_dir)
    summary = json.loads((out / "summary.json").read_text())
    layers = [
        viewer.add_image(load_sample("w2s_noisy"), name="W2S noisy"),
        viewer.add_image(load_sample("nuclei_2d"), name="DSB2018 nuclei"),
        viewer.add_image(load_sample("hela_timelapse"), name="HeLa time-lapse"),
    ]
    for step in summary["steps"]:
        data = read_image(out / step["file"]).data
        name = f"{step['step']}: {step['file']}"
        add = viewer.add_labels if step["layer_type"] == "labels" else viewer.add_image
        layers.append(add(data, name=name))
        if step.get("ctc"):  # the tracks, with their division graph
            layers.append(_add_tracks(viewer, out / step["ctc"]))
    return layers


def _add_tracks(viewer, folder: Path):
    from cellsight.core.tracking import napari_tracks
    from cellsight.core.tracking.convert import result_from_ctc
    from cellsight.io.ctc import read_ctc

    ctc = read_ctc(folder, with_image=False)
    result = result_from_ctc(ctc.labels, ctc.table)
    data, graph, _ = napari_tracks(result.detections, result.parent, result.node_track)
    return viewer.add_tracks(data, graph=graph, name=f"track: {folder.name}")


def main(argv: list[str] | None = None) -> int:
    """Start napari showing the results folder given on the command line."""
    import napari

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m cellsight.gui.results OUTPUT_DIR", file=sys.stderr)
        return 2
    viewer = napari.Viewer(title="cellsight results")
    open_results(viewer, argv[0])
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
