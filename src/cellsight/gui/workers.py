"""The one helper that runs cellsight work off the GUI thread.

Every widget calls :func:`start_job`. The job function runs in a worker thread and
receives two keyword arguments from here: ``progress`` (call it with a
:class:`~cellsight.core.progress.ProgressEvent`) and ``should_stop`` (poll it; when it
returns True, stop and either return what is done or raise
:class:`~cellsight.core.progress.Cancelled`). Everything the callbacks given here do
happens on the main thread: progress goes to napari's activity dock, errors become a
napari notification that names the cause, and results are handed to ``on_result``
(which typically adds layers to the viewer).

Each job is also known to napari: its progress bar in the activity dock has a Cancel
button (a :class:`~napari.utils.progress.cancelable_progress` that calls
:meth:`Job.cancel`), and it is registered with the viewer window's task-status manager,
so closing napari while it runs asks for confirmation and then cancels it.
"""

import functools
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from napari.utils.notifications import show_error, show_info
from napari.utils.progress import cancelable_progress
from napari.utils.task_status import Status
from qtpy.QtCore import QTimer
from superqt.utils import create_worker

from cellsight.core.progress import Cancelled, ProgressEvent

logger = logging.getLogger(__name__)

_RUNNING: set["Job"] = set()  # keeps jobs (and their Qt objects) alive while they run


#: how often (ms) the main thread looks for progress events queued by the worker (cheap)
PROGRESS_INTERVAL_MS = 100

#: least time (ms) between two hand-overs of progress to the main thread, after the first.
#: Each hand-over repaints the dock (progress bar, ETA, loss plot) in one go; with software
#: OpenGL (Xvfb, remote desktops) Qt composes the whole window for every repaint of any
#: widget beside napari's canvas, ~25-35 ms on 2 cores, so a job's visible updates are
#: batched to about one window repaint a second
UI_REFRESH_MS = 1000


#: napari task-status state of each final job state
_FINAL_STATUS = {"done": Status.COMPLETED, "cancelled": Status.CANCELLED, "failed": Status.FAILED}


class JobProgress(cancelable_progress):
    """napari progress bar of a job; its Cancel button (activity dock) stops the job."""

    def cancel(self) -> None:
        """Mark the bar cancelled and ask the job to stop (main thread)."""
        super().cancel()
        if self.cancel_callback is not None:
            self.cancel_callback()


#: speed (percent of normal) of napari's "activity" spinner while a job runs. At full
#: speed it repaints the whole window ~30 times a second; with software OpenGL (Xvfb,
#: remote desktops) that took about 2/3 of the steps/s of a training on 2 busy cores
#: (benchmarks/dock_speed.py: 0.44-0.49 vs 1.36-1.74 steps/s with the spinner at 10 %),
#: and each of its frames stalls the main thread for a window composition (~30 ms)
SPINNER_SPEED = 2


def calm_spinner(window) -> bool:
    """Slow napari's activity spinner of ``window`` to :data:`SPINNER_SPEED`; True if done.

    It still turns (a frame every second or two) so the window shows that work goes on;
    the dock's own progress bar says how far the job is.
    napari keeps the spinner in private attributes: if they change, nothing happens.
    """
    try:
        bar = window._qt_window.statusBar()
        movie = bar._activity_item._inProgressIndicator.movie()
    except (AttributeError, RuntimeError):
        return False
    if movie is None:
        return False
    if movie.speed() != SPINNER_SPEED:
        movie.setSpeed(SPINNER_SPEED)
    return True


#: set once the lazy imports of the first training are done (see :func:`warm_up_training`)
training_warm = threading.Event()
_warming = threading.Lock()


def _warm() -> None:
    try:
        import torch

        # torch imports torch._dynamo (sympy and ~800 modules, 1.5-4 s on 2 cores) the first
        # time any optimizer is built: one tiny optimizer pays for that here
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    except Exception:  # a failed warm-up only means the first training starts slower
        logging.getLogger(__name__).debug("training warm-up failed", exc_info=True)
    finally:
        training_warm.set()


def warm_up_training() -> None:
    """Do the first training's slow lazy imports in a background thread, once a session.

    Called when a dock that trains is created, so that the first progress report (step
    and loss) comes within about a second of pressing Train instead of 2-5 s later. The
    thread only imports; it holds the GIL in bursts (up to ~150 ms measured on 2 busy
    cores) while the dock is being opened, never while a job runs.
    """
    if training_warm.is_set() or not _warming.acquire(blocking=False):
        return
    threading.Thread(target=_warm, name="cellsight-warm-up", daemon=True).start()


_threads_lock = threading.Lock()
_threads_state = {"jobs": 0, "saved": None}


def _leave_a_core_begin() -> None:
    torch = sys.modules.get("torch")  # a job that never imported torch needs nothing here
    with _threads_lock:
        _threads_state["jobs"] += 1
        if torch is None or _threads_state["saved"] is not None:
            return
        saved = torch.get_num_threads()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        if cores > 1 and saved >= cores:
            _threads_state["saved"] = saved
            torch.set_num_threads(cores - 1)


def _leave_a_core_end() -> None:
    with _threads_lock:
        _threads_state["jobs"] -= 1
        if _threads_state["jobs"] == 0 and _threads_state["saved"] is not None:
            sys.modules["torch"].set_num_threads(_threads_state["saved"])
            _threads_state["saved"] = None


def _sharing_cores(func):
    """``func`` run with one core fewer for torch while any job runs in the viewer.

    The main thread (napari's event loop) and the display need a core: with torch on
    every core, the viewer's 10 ms timer saw gaps of p99 90 ms during a training on 2
    cores, and the training itself ran at half the speed (benchmarks/dock_speed.py: 1.9
    vs 3.8-4.0 steps/s; its threads wait for the busiest core). Only when torch is
    already imported (the docks that run models import it when they open): a job that
    does not use torch is not made to import it.
    """

    @functools.wraps(func)
    def run(*args, **kwargs):
        _leave_a_core_begin()
        try:
            return func(*args, **kwargs)
        finally:
            _leave_a_core_end()

    return run


#: set once napari's label colouring is compiled (see :func:`warm_up_labels`)
labels_warm = threading.Event()
_warming_labels = threading.Lock()


def _warm_labels() -> None:
    try:
        import numpy as np
        from napari.utils.colormaps import _accelerated_cmap as cmap

        # napari maps label ids to colours with numba functions compiled per dtype and
        # dimension on first use (0.4-0.8 s on the main thread when a result is shown)
        for dtype in (np.int32, np.uint32, np.uint16, np.uint8):
            for ndim in (1, 2):  # a 2D slice, and the ids of a slice
                cmap.zero_preserving_modulo(np.zeros((2,) * ndim, dtype), 49, np.uint8)
    except Exception:  # private napari API: if it moved, the first result is just slower
        logging.getLogger(__name__).debug("labels warm-up failed", exc_info=True)
    finally:
        labels_warm.set()


def warm_up_labels() -> None:
    """Compile napari's label colouring in a background thread, once a session.

    Called when a dock that shows labels is created, so that showing its first result
    does not stop the viewer for the compilation.
    """
    if labels_warm.is_set() or not _warming_labels.acquire(blocking=False):
        return
    threading.Thread(target=_warm_labels, name="cellsight-warm-labels", daemon=True).start()


def _task_window(viewer):
    """The napari window that tracks running tasks, if there is one."""
    if viewer is None:
        from napari import current_viewer

        viewer = current_viewer()
    window = getattr(viewer, "window", None)
    return window if hasattr(window, "_register_task_status") else None


def _weak(method):
    """A callback that calls ``method`` while its object lives (napari keeps task entries)."""
    ref = weakref.WeakMethod(method)

    def call():
        bound = ref()
        return bound() if bound is not None else False

    return call


class Job:
    """Handle of one background job: cancel it, or wait for its state."""

    def __init__(self, name: str, total: int, viewer=None):
        self.name = name
        self._stop = threading.Event()
        self._events: deque[ProgressEvent] = deque()  # appended by the worker thread
        self._timer = QTimer()
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._pbar = JobProgress(total=total, desc=name, cancel_callback=self.cancel)
        self._pbar.refresh()  # build the activity-dock widget now, not mid-job
        self._window = _task_window(viewer)
        if self._window is not None:
            calm_spinner(self._window)
        self.task_id = None
        if self._window is not None:
            self.task_id = self._window._register_task_status(
                "cellsight", Status.BUSY, name, cancel_callback=_weak(self.cancel)
            )
        self._message = ""
        self._last_drain: float | None = None
        self.worker = None
        self.state = "running"  # -> "done" | "cancelled" | "failed"
        self.error: BaseException | None = None

    def cancel(self) -> None:
        """Ask the job to stop; it finishes at its next ``should_stop()`` check."""
        # Only our own flag: worker.quit() would make superqt drop the return value
        # of a job that stops cleanly and returns what it has.
        self._stop.set()

    def should_stop(self) -> bool:
        """Return True once :meth:`cancel` was called (thread-safe)."""
        return self._stop.is_set()

    @property
    def is_running(self) -> bool:
        """Whether the job has not finished yet."""
        return self.state == "running"

    def _poll(self, on_progress, on_batch=None) -> None:
        """Main thread, every PROGRESS_INTERVAL_MS: drain when a refresh is due."""
        if not self._events:
            return
        now = time.monotonic()
        if self._last_drain is not None and now - self._last_drain < UI_REFRESH_MS / 1000:
            return
        self._drain(on_progress, on_batch)

    def _drain(self, on_progress, on_batch=None) -> None:
        """Main thread: pass queued events on, then refresh the progress bars once."""
        last = None
        while self._events:
            last = self._events.popleft()
            if on_progress is not None:
                on_progress(last)
        if last is not None:
            self._last_drain = time.monotonic()
            self._update_progress(last)
            if on_batch is not None:
                on_batch()

    def _update_progress(self, event: ProgressEvent) -> None:
        if event.total and event.total != self._pbar.total:
            self._pbar.total = event.total
        self._pbar.n = min(event.step, self._pbar.total or event.step)
        if event.message and event.message != self._message:
            self._message = event.message
            self._pbar.set_description(f"{self.name}: {event.message}")
        self._pbar.refresh()

    def _close(self) -> None:
        self._timer.stop()
        self._pbar.close()
        _RUNNING.discard(self)
        if self._window is not None:
            status = _FINAL_STATUS.get(self.state, Status.COMPLETED)
            self._window._update_task_status(self.task_id, status, f"{self.name}: {self.state}")


def start_job(
    func: Callable[..., Any],
    *args: Any,
    name: str,
    on_result: Callable[[Any], None] | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    on_cancelled: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    on_batch: Callable[[], None] | None = None,
    total: int = 0,
    viewer: Any = None,
    **kwargs: Any,
) -> Job:
    """Run ``func(*args, progress=..., should_stop=..., **kwargs)`` in a worker thread.

    Parameters
    ----------
    func : callable
        A core function (no Qt, no napari calls). Must accept ``progress`` and
        ``should_stop`` keyword arguments.
    name : str
        Shown in napari's activity dock and in notifications.
    on_result : callable, optional
        Main thread, with the return value when the job completes.
    on_progress : callable, optional
        Main thread, with every :class:`ProgressEvent` in order (e.g. to draw a loss
        curve). Events arrive in batches (the first at once, then at most one batch
        every ``UI_REFRESH_MS``); keep the per-event work cheap (store values).
    on_batch : callable, optional
        Main thread, after each batch of ``on_progress`` calls: redraw here (a plot), so
        that everything a batch changes is painted in one window repaint.
    on_cancelled : callable, optional
        Main thread, with the partial result (``Cancelled.partial``, or the return
        value of a job that returned after a stop request).
    on_error : callable, optional
        Main thread, with the exception; a notification is shown in any case.
    on_finished : callable, optional
        Main thread, always called last (done, cancelled or failed).
    total : int
        Expected number of progress steps (0 = unknown until the job reports one).
    viewer : napari.Viewer, optional
        Whose window lists the job as a running task (asked about on close); default
        :func:`napari.current_viewer`.

    Returns
    -------
    Job
    """
    job = Job(name, total, viewer)

    def report(event: ProgressEvent) -> None:  # worker thread: just queue it
        job._events.append(event)

    def returned(value: Any) -> None:
        job._drain(on_progress, on_batch)
        if job.should_stop():
            job.state = "cancelled"
            if on_cancelled is not None:
                on_cancelled(value)
            show_info(f"{name} stopped; what was finished is kept.")
            return
        job.state = "done"
        if on_result is not None:
            on_result(value)

    def errored(exc: BaseException) -> None:
        job._drain(on_progress, on_batch)
        # state and callbacks first: a notification may process pending Qt events
        if isinstance(exc, Cancelled):
            job.state = "cancelled"
            if on_cancelled is not None:
                on_cancelled(exc.partial)
            show_info(f"{name} stopped; what was finished is kept.")
            return
        job.state = "failed"
        job.error = exc
        logger.error("%s failed", name, exc_info=(type(exc), exc, exc.__traceback__))
        if on_error is not None:
            on_error(exc)
        show_error(f"{name} failed: {type(exc).__name__}: {exc}")

    def finished() -> None:
        if job.state == "running":  # defensive: neither returned nor errored arrived
            job.state = "cancelled" if job.should_stop() else "done"
        job._close()
        if on_finished is not None:
            on_finished()

    job._timer.timeout.connect(lambda: job._poll(on_progress, on_batch))
    worker = create_worker(
        _sharing_cores(func),
        *args,
        progress=report,
        should_stop=job.should_stop,
        _start_thread=False,
        _connect={"returned": returned, "errored": errored, "finished": finished},
        **kwargs,
    )
    job.worker = worker
    _RUNNING.add(job)
    job._timer.start()
    worker.start()
    return job


def running_jobs() -> list[Job]:
    """Jobs started by :func:`start_job` that have not finished."""
    return list(_RUNNING)
