"""Regenerate docs/images/denoise_widget.png (run under a display, e.g. xvfb-run).

Opens the noisy W2S sample, trains Noise2Void from the Denoise dock widget (CPU, 150
steps) and takes the screenshot once the denoised layer is there.
"""

import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "denoise_widget.png"


def main() -> int:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open_sample("cellsight", "w2s_noisy")
    _, widget = viewer.window.add_plugin_dock_widget("cellsight", "Denoise")
    widget.form.editors["steps"].setValue(150)
    widget.device_box.setCurrentText("cpu")
    widget.start()
    deadline = time.monotonic() + 600
    while widget.job is not None and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    name = f"{widget._source.name} denoised"
    if name not in viewer.layers:
        print(f"no denoised layer: {widget.status.text()}", file=sys.stderr)
        return 1
    for layer in viewer.layers:
        layer.visible = layer.name in (name, widget._source.name)
    viewer.grid.enabled = True
    viewer.camera.zoom = 1.6
    for _ in range(30):
        QApplication.processEvents()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False)
    viewer.close()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
