"""Regenerate the screenshots in docs/images (run under a display, e.g. xvfb-run)."""

import sys
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)
    viewer.open_sample("cellsight", "nuclei_2d")
    viewer.window.add_plugin_dock_widget("cellsight", "Correct labels")
    for _ in range(20):
        QApplication.processEvents()
    viewer.screenshot(str(OUT / "nuclei_sample_corrections.png"), canvas_only=False)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
