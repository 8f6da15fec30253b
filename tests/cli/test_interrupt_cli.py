"""Ctrl-C / SIGTERM during training (issue 18): the run ends through the trainer's stop
path, the model so far is saved where the command says, and a second Ctrl-C aborts.

Each test runs ``python -m cellsight`` in a subprocess (tiny data, many steps) and sends
the signal once training reports progress on stderr.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tifffile

from cellsight.io.tiff import write_image

#: each subprocess test starts an interpreter with torch and trains: 3-10 s
slow = pytest.mark.slow

TINY_UNET = ["--patch-size", "32", "--depth", "2", "--base-channels", "4", "--batch-size", "2",
             "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt")
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.2, (40, 48)).astype(np.float32)
    image[10:30, 12:36] += 1.0
    strokes = np.zeros(image.shape, np.uint8)
    strokes[18:22, 16:32] = 2
    strokes[:3] = strokes[-3:] = 1
    instances = np.zeros(image.shape, np.uint16)
    for i, (y, x) in enumerate(((8, 8), (8, 28), (26, 10), (26, 30)), start=1):
        instances[y:y + 8, x:x + 8] = i
    tifffile.imwrite(folder / "img.tif", image)
    tifffile.imwrite(folder / "lbl.tif", strokes)
    tifffile.imwrite(folder / "inst.tif", instances)
    write_image(folder / "noisy.tif", rng.poisson(40, (48, 40)).astype(np.uint16), axes="YX")
    return folder


class Run:
    """``python -m cellsight ARGS`` with its stderr collected as it comes."""

    def __init__(self, *args, cwd):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "cellsight", *args], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.proc.stderr.read1(4096), b""):
            self.chunks.append(chunk)

    @property
    def err(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.err:
            if self.proc.poll() is not None or time.monotonic() > end:
                self.proc.kill()
                pytest.fail(f"never saw {text!r} (exit {self.proc.poll()}): {self.err}")
            time.sleep(0.05)

    def finish(self, timeout: float = 120.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self.reader.join(10)
        return code


def _stopped(run: Run, signum, marker: str = "training") -> int:
    run.wait_for(marker)
    run.proc.send_signal(signum)
    return run.finish()


def _train(data, out, *extra):
    return Run("train", "--task", "semantic", "--images", "img.tif", "--labels", "lbl.tif",
               "--out", out, "--steps", "100000", *TINY_UNET, *extra, cwd=data)


@slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_stops_saves_the_model_and_says_where(data, signum, code):
    from cellsight.core.segmentation.semantic import SemanticModel

    out = f"sem-{signum}"
    run = _train(data, out)
    assert _stopped(run, signum) == code, run.err
    lines = [line for line in run.err.splitlines() if line.startswith("stopped at step")]
    assert lines and lines[-1].endswith(f"model saved to {out}"), run.err
    steps = int(lines[-1].split()[3].rstrip(":"))
    assert steps >= 1
    model = SemanticModel.load(data / out)  # a loadable model, before any validation
    assert model.meta["metrics"]["steps_done"] == steps
    assert model.meta["metrics"]["stop_reason"] == "cancelled"
    assert "Traceback" not in run.err


@slow
def test_instance_training_stops_the_same_way(data):
    from cellsight.core.segmentation.instance_model import InstanceModel

    run = Run("train", "--task", "instance", "--images", "img.tif", "--labels", "inst.tif",
              "--out", "inst", "--steps", "100000", *TINY_UNET, cwd=data)
    assert _stopped(run, signal.SIGINT) == 130, run.err
    assert "model saved to inst" in run.err
    assert InstanceModel.load(data / "inst").meta["metrics"]["stop_reason"] == "cancelled"


@slow
def test_fine_tuning_stopped_saves_the_model_so_far(data):
    from cellsight.core.segmentation.instance_model import InstanceModel

    run = Run("train", "--task", "instance", "--from", "nuclei", "--images", "img.tif",
              "--labels", "inst.tif", "--out", "tuned", "--steps", "100000", "--batch-size",
              "2", "--patch-size", "32", "--device", "cpu", cwd=data)
    assert _stopped(run, signal.SIGINT, marker="fine-tune: training") == 130, run.err
    assert "model saved to tuned" in run.err
    tuned = InstanceModel.load(data / "tuned")
    assert tuned.meta["fine_tune"]["from"] == "nuclei"
    assert tuned.meta["fine_tune"]["stopped_at_step"] >= 1


@slow
@pytest.mark.parametrize("save_model", [True, False])
def test_denoise_training_stopped_saves_a_model_and_writes_no_image(data, save_model):
    from cellsight.core.denoise import load_model

    out = f"den-{save_model}.tif"
    extra = ["--save-model", f"n2v-{save_model}"] if save_model else []
    run = Run("denoise", "noisy.tif", "--out", out, "--steps", "100000", "--patch-size", "16",
              "--batch-size", "2", "--device", "cpu", *extra, cwd=data)
    assert _stopped(run, signal.SIGINT) == 130, run.err
    folder = f"n2v-{save_model}" if save_model else f"den-{save_model}-n2v-stopped-001"
    assert f"model saved to {folder}" in run.err
    assert load_model(data / folder).meta["steps_done"] >= 1
    assert not (data / out).exists()


@slow
def test_a_second_ctrl_c_aborts_at_once(data):
    run = _train(data, "twice")
    run.wait_for("training")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("Ctrl-C again")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.err
    assert "Traceback" not in run.err
    # whatever got saved is a whole model, or nothing: never a half-written folder
    folder = data / "twice"
    if folder.exists():
        from cellsight.core.segmentation.semantic import SemanticModel

        SemanticModel.load(folder)
    assert not [p for p in data.iterdir() if p.name.startswith(".twice")]


def test_before_training_a_signal_aborts_at_once_and_handlers_are_restored():
    from cellsight.cli._interrupt import StopOnSignal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopOnSignal() as stop:
        assert signal.getsignal(signal.SIGINT) == stop._handle
        with pytest.raises(KeyboardInterrupt):  # not armed yet: the default Ctrl-C
            stop._handle(signal.SIGINT, None)
    assert {s: signal.getsignal(s) for s in before} == before
    with StopOnSignal() as stop:
        with pytest.raises(SystemExit) as exit_:
            stop._handle(signal.SIGTERM, None)
    assert exit_.value.code == 143 and not stop()


def test_once_training_reports_a_signal_only_asks_to_stop():
    from cellsight.cli._interrupt import StopOnSignal
    from cellsight.core.progress import ProgressEvent

    seen = []
    with StopOnSignal() as stop:
        progress = stop.watch(seen.append)
        progress(ProgressEvent(0, 10, "checking"))
        assert not stop.armed
        progress(ProgressEvent(1, 10, "training"))
        stop._handle(signal.SIGTERM, None)
        assert stop() and stop.exit_code == 143
        with pytest.raises(KeyboardInterrupt):  # the second one aborts
            stop._handle(signal.SIGINT, None)
    assert len(seen) == 2
