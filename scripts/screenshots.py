"""Regenerate the dock screenshots in docs/images (napari window 1280 x 800).

Every dock is opened beside the sample data it is meant for, as a user would see it
after opening the sample from *File > Open Sample > cellsight*. The click-tool and
lineage-tree pictures also run the tool once (the built-in click model; tracking the
HeLa sample's imperfect segmentation) so the picture shows a result.

Run from the repository root under a display (or a virtual one):

    xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python scripts/screenshots.py

Writes docs/images/dock_<name>.png, click_tool.png and lineage_tree.png.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import napari  # noqa: E402
import numpy as np  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = (1280, 800)
#: dock name in napari.yaml -> (file stem, sample to open)
DOCKS = {
    "Semantic segmentation": ("semantic", "nuclei_2d"),
    "Instance segmentation": ("instance", "nuclei_2d"),
    "Denoise": ("denoise", "w2s_noisy"),
    "Correct labels": ("correct", "nuclei_2d"),
    "Fine-tune & review": ("finetune", "nuclei_2d"),
    "Track cells": ("track", "hela_timelapse"),
    "Batch (folders of images)": ("batch", "nuclei_2d"),
}


def settle(seconds: float = 1.0) -> None:
    app = QApplication.instance()
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def wait(condition, timeout: float = 120.0) -> None:
    app = QApplication.instance()
    end = time.time() + timeout
    while not condition() and time.time() < end:
        app.processEvents()
        time.sleep(0.02)


def new_viewer(sample: str):
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)
    viewer.open_sample("cellsight", sample)
    return viewer


def shoot(viewer, path: Path) -> None:
    settle(0.8)
    viewer.screenshot(str(path), canvas_only=False)
    print("wrote", path)


def docks(out: Path) -> None:
    for name, (stem, sample) in DOCKS.items():
        viewer = new_viewer(sample)
        viewer.window.add_plugin_dock_widget("cellsight", name)
        shoot(viewer, out / f"dock_{stem}.png")
        viewer.close()


def click_tool(out: Path) -> None:
    from skimage.measure import regionprops

    from cellsight.core.curation.clicks import interior_point
    from cellsight.plugin.samples import load_sample

    viewer = new_viewer("nuclei_2d")
    truth = load_sample("nuclei_2d_masks")
    viewer.layers["DSB2018 nuclei masks"].visible = False
    labels = viewer.add_labels(np.zeros(truth.shape, np.int32), name="clicked nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("cellsight", "Correct labels")
    tool = widget.click_tool
    widget.layer_box.value = labels
    tool.image_box.value = viewer.layers["DSB2018 nuclei"]
    tool.on_box.setChecked(True)
    regions = sorted(regionprops(truth), key=lambda r: -r.area)[:8]
    points = []
    for r in regions:
        y, x = interior_point(truth == r.label)
        points.append((y, x))
        tool.prompt("click", (y, x))
        wait(lambda: not tool.busy and not tool._queue)
        tool.commit()
    viewer.add_points(points, name="clicks (one per nucleus)", size=8, face_color="lime")
    viewer.layers.selection.active = labels
    shoot(viewer, out / "click_tool.png")
    viewer.close()


def lineage_tree(out: Path) -> None:
    from cellsight.plugin.samples import load_sample

    viewer = new_viewer("hela_timelapse")
    image = viewer.layers["HeLa nuclei time-lapse"]
    seg = viewer.add_labels(load_sample("hela_timelapse_errseg"), name="HeLa segmentation",
                            scale=image.scale, units=image.units)
    _, widget = viewer.window.add_plugin_dock_widget("cellsight", "Track cells")
    widget.labels_box.value = seg
    job = widget.start_tracking()
    wait(lambda: not job.is_running, 300)
    settle(1.0)
    shoot(viewer, out / "lineage_tree.png")
    viewer.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--only", choices=["docks", "clicks", "lineage"], default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = {"docks": docks, "clicks": click_tool, "lineage": lineage_tree}
    for key, job in jobs.items():
        if args.only in (None, key):
            job(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
