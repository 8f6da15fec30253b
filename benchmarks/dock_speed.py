"""Training speed in napari vs the command line (issue 19 item 1).

The same semantic training (a 256x256 crop of the DSB2018 nuclei sample, strokes taken
from its masks, the same settings and seed) runs once through ``cellsight train --task
semantic`` in a subprocess and once through the Semantic dock in a napari window (run
this under a display, e.g. ``xvfb-run -a``). Steps per second are measured the same way
for both, from the progress reports: (last step - first step reported) / time between
them, so start-up (imports, reading, building the network) is left out; the wall time
from start to the finished model is reported too. Nothing sets OMP_WAIT_POLICY here: both
run with the thread settings the library applies itself.

    xvfb-run -a .venv/bin/python benchmarks/dock_speed.py

writes ``benchmarks/results/dock_speed.json``. About 2-3 minutes on 2 CPU cores.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dock_speed.json"
SETTINGS = {"steps": 30, "patch_size": 128, "batch_size": 4, "val_every": 10,
            "depth": 3, "base_channels": 16, "device": "cpu"}


def data() -> tuple[np.ndarray, np.ndarray]:
    """A 256x256 crop and strokes: background (1) every 8th row, nuclei (2) the row after."""
    from cellsight.plugin.samples import load_sample

    image = load_sample("nuclei_2d")[:256, :256]
    masks = load_sample("nuclei_2d_masks")[:256, :256]
    strokes = np.zeros(image.shape, np.uint8)
    strokes[::8][masks[::8] == 0] = 1
    strokes[1::8][masks[1::8] > 0] = 2
    return image, strokes


def rate(times: list[tuple[int, float]]) -> float:
    """Steps per second between the first and the last progress report."""
    (s0, t0), (s1, t1) = times[0], times[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan")


def run_cli(folder: Path) -> dict:
    """``cellsight train --task semantic`` in a subprocess; progress read from its bar."""
    image, strokes = data()
    tifffile.imwrite(folder / "image.tif", image)
    tifffile.imwrite(folder / "strokes.tif", strokes)
    exe = Path(sys.executable).with_name("cellsight")
    cmd = [str(exe), "train", "--task", "semantic", "--images", str(folder / "image.tif"),
           "--labels", str(folder / "strokes.tif"), "--out", str(folder / "cli_model"),
           "--steps", str(SETTINGS["steps"]), "--patch-size", str(SETTINGS["patch_size"]),
           "--batch-size", str(SETTINGS["batch_size"]), "--depth", str(SETTINGS["depth"]),
           "--base-channels", str(SETTINGS["base_channels"]), "--device", SETTINGS["device"]]
    config = folder / "val.yaml"  # val_every has no option of its own
    config.write_text(f"training:\n  val_every: {SETTINGS['val_every']}\n")
    cmd += ["--config", str(config)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    times: list[tuple[int, float]] = []

    def read() -> None:  # tqdm redraws with "\r": time-stamp every "n/total" it prints
        buffer = b""
        while chunk := proc.stderr.read1(4096):
            now = time.perf_counter() - start
            buffer += chunk
            *parts, buffer = re.split(rb"[\r\n]", buffer)
            for part in parts:
                found = re.search(rb"training\S*\s.*?(\d+)/(\d+)", part)
                if found and int(found.group(2)) == SETTINGS["steps"]:
                    times.append((int(found.group(1)), now))

    reader = threading.Thread(target=read)
    reader.start()
    proc.wait()
    wall = time.perf_counter() - start
    reader.join()
    if proc.returncode:
        raise RuntimeError(f"cellsight train failed ({proc.returncode}): {proc.stdout.read()}")
    times = [t for t in times if t[0] > 0]
    return {"steps_per_s": round(rate(times), 3), "wall_s": round(wall, 1),
            "reports": len(times), "command": " ".join(cmd[1:])}


def run_dock() -> dict:
    """The Semantic dock in a napari window: Train pressed, events processed until done."""
    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    from cellsight.gui.semantic_widget import SemanticWidget
    from cellsight.gui.workers import training_warm

    image, strokes = data()
    viewer = napari.Viewer(show=True)
    QEventLoop().processEvents()  # the window is drawn before the clock starts
    viewer.add_image(image, name="crop")
    viewer.add_labels(strokes, name="strokes")
    widget = SemanticWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Semantic segmentation")
    for name in ("steps", "patch_size", "batch_size", "val_every"):
        widget.training_form.editors[name].setValue(SETTINGS[name])
    for name in ("depth", "base_channels"):
        widget.network_form.editors[name].setValue(SETTINGS[name])
    widget.device_box.setCurrentText(SETTINGS["device"])
    # the dock warms torch's lazy imports when it opens, while a user sets it up
    opened = time.perf_counter()
    while not training_warm.wait(0.02):
        QEventLoop().processEvents()
    warm_s = time.perf_counter() - opened
    times: list[tuple[int, float]] = []
    shown = widget._on_progress

    def record(event) -> None:
        if event.total == SETTINGS["steps"] and event.step > 0:
            times.append((event.step, time.perf_counter() - start))
        shown(event)

    widget._on_progress = record
    loop = QEventLoop()  # as napari's own event loop: sleeps until something happens
    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(lambda: widget.job is None and loop.quit())
    start = time.perf_counter()
    job = widget.start_training()
    poll.start()
    loop.exec()
    poll.stop()
    wall = time.perf_counter() - start
    state, steps = job.state, widget.model.meta["metrics"]["steps_done"]
    viewer.close()
    if state != "done":
        raise RuntimeError(f"dock training ended {state}: {widget.status.text()}")
    first = times[0][1] if times else float("nan")
    return {"steps_per_s": round(rate(times), 3), "wall_s": round(wall, 1),
            "first_feedback_s": round(first, 2), "steps_done": steps, "reports": len(times),
            "warm_up_s_after_setup": round(warm_s, 2)}


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cli = run_cli(Path(tmp))
    dock = run_dock()
    result = {
        "settings": SETTINGS,
        "data": "DSB2018 nuclei sample, 256x256 crop, strokes every 8th row from its masks",
        "cli": cli,
        "dock": dock,
        "dock_vs_cli": round(dock["steps_per_s"] / cli["steps_per_s"], 3),
        "cpu_count": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
