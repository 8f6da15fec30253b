"""The one worker helper: responsive GUI, cancel, errors, results on the main thread."""

import threading
import time

import numpy as np
import pytest
from qtpy.QtCore import QElapsedTimer, QTimer

from cellsight.core.progress import Cancelled, ProgressEvent
from cellsight.gui.workers import running_jobs, start_job


def busy_job(seconds, progress, should_stop):
    """CPU-bound numeric work (like a training loop) in ~10 ms chunks, reporting progress."""
    steps = int(seconds / 0.01)
    rng = np.random.default_rng(0)
    for i in range(steps):
        if should_stop():
            raise Cancelled(partial=i)
        end = time.perf_counter() + 0.01
        while time.perf_counter() < end:
            np.sort(rng.random(20_000))
        progress(ProgressEvent(i + 1, steps, "working", {"loss": 1.0 / (i + 1)}))
    return threading.current_thread().name


def failing_job(progress, should_stop):
    raise ValueError("labels layer is empty: paint at least one class")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_event_loop_keeps_ticking_while_job_runs(viewer, qtbot):
    gaps, clock, results = [], QElapsedTimer(), []
    timer = QTimer()
    timer.setInterval(5)

    def tick():
        gaps.append(clock.restart())

    timer.timeout.connect(tick)
    job = start_job(busy_job, 2.0, name="busy", on_result=results.append)
    # measure from the moment the click handler returned, while the job runs
    clock.start()
    timer.start()
    qtbot.waitUntil(lambda: not job.is_running, timeout=10_000)
    timer.stop()
    assert job.state == "done"
    assert results and results[0] != threading.main_thread().name  # ran off the GUI thread
    assert len(gaps) > 100
    assert max(gaps[1:]) < 50, f"largest gap between timer ticks: {max(gaps[1:])} ms; {gaps}"


def test_progress_reaches_main_thread(viewer, qtbot):
    seen = []
    job = start_job(busy_job, 0.2, name="small", on_progress=lambda e: seen.append(
        (e.step, threading.current_thread() is threading.main_thread())))
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    assert seen and all(on_main for _, on_main in seen)
    assert seen[-1][0] == 20


def test_cancel_stops_within_half_a_second(viewer, qtbot):
    partial = []
    job = start_job(busy_job, 10.0, name="long", on_cancelled=partial.append)
    qtbot.wait(300)
    started = time.perf_counter()
    job.cancel()
    qtbot.waitUntil(lambda: not job.is_running, timeout=2000)
    assert time.perf_counter() - started < 0.5
    assert job.state == "cancelled"
    assert partial and 0 < partial[0] < 1000
    assert job not in running_jobs()


def test_error_becomes_notification_and_viewer_stays_usable(viewer, qtbot, monkeypatch):
    from cellsight.gui import workers

    shown, errors = [], []
    monkeypatch.setattr(workers, "show_error", shown.append)
    job = start_job(failing_job, name="Train", on_error=errors.append)
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    assert job.state == "failed"
    assert shown and "Train failed" in shown[0] and "labels layer is empty" in shown[0]
    assert isinstance(errors[0], ValueError)
    layer = viewer.add_image(__import__("numpy").zeros((8, 8)))
    assert layer in viewer.layers


def test_error_reaches_napari_notification_manager(viewer, qtbot):
    from napari.utils.notifications import notification_manager

    received = []
    notification_manager.notification_ready.connect(received.append)
    try:
        job = start_job(failing_job, name="Segment")
        qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
        qtbot.waitUntil(lambda: bool(received), timeout=2000)
    finally:
        notification_manager.notification_ready.disconnect(received.append)
    assert any("Segment failed" in str(n.message) for n in received)


def stops_cleanly(progress, should_stop):
    done = 0
    while not should_stop() and done < 10_000:
        time.sleep(0.005)
        done += 1
    return {"done": done}


def test_job_that_returns_after_stop_hands_back_its_result(viewer, qtbot):
    partial, finished = [], []
    job = start_job(stops_cleanly, name="clean stop", on_cancelled=partial.append,
                    on_finished=lambda: finished.append(job.state))
    qtbot.wait(100)
    job.cancel()
    qtbot.waitUntil(lambda: bool(finished), timeout=2000)
    assert job.state == "cancelled"
    assert partial and partial[0]["done"] > 0
    assert finished == ["cancelled"]


def test_progress_batches_are_drawn_once_a_refresh(viewer, qtbot):
    """Events are handed over at once the first time, then at most once per UI_REFRESH_MS."""
    from cellsight.gui.workers import UI_REFRESH_MS

    batches, events = [], []
    job = start_job(busy_job, 2.5, name="batched", on_progress=events.append,
                    on_batch=lambda: batches.append(time.monotonic()))
    qtbot.waitUntil(lambda: not job.is_running, timeout=20_000)
    assert len(events) == 250 and [e.step for e in events] == list(range(1, 251))
    gaps = np.diff(batches[:-1])  # the last batch comes with the result
    assert len(batches) >= 2 and (gaps >= UI_REFRESH_MS / 1000 - 0.02).all(), gaps
    assert len(batches) <= 2.5 / (UI_REFRESH_MS / 1000) + 2


def test_a_job_leaves_a_core_to_the_viewer(viewer, qtbot):
    """While a job runs torch uses one core fewer (main thread, display); then all again."""
    import os

    import torch

    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    seen = []

    def job_threads(progress, should_stop):
        seen.append(torch.get_num_threads())
        return seen[-1]

    job = start_job(job_threads, name="threads")
    qtbot.waitUntil(lambda: not job.is_running, timeout=5000)
    expected = cores - 1 if cores > 1 and before >= cores else before
    assert seen == [expected]
    assert torch.get_num_threads() == before
