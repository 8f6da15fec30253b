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

import logging
import threading
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


#: how often (ms) progress events queued by the worker are handed to the main thread;
#: batching keeps a job that reports every few milliseconds from flooding the GUI
PROGRESS_INTERVAL_MS = 100


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
#: (benchmarks/dock_speed.py: 0.44-0.49 vs 1.36-1.74 steps/s with the spinner at 10 %)
SPINNER_SPEED = 10


def calm_spinner(window) -> bool:
    """Slow napari's activity spinner of ``window`` to :data:`SPINNER_SPEED`; True if done.

    It still turns (about 3 frames a second) so the window shows that work goes on.
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

    def _drain(self, on_progress) -> None:
        """Main thread: pass queued events on, then refresh the progress bar once."""
        last = None
        while self._events:
            last = self._events.popleft()
            if on_progress is not None:
                on_progress(last)
        if last is not None:
            self._update_progress(last)

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
        curve). Events arrive in batches every ``PROGRESS_INTERVAL_MS``; keep the
        per-event work cheap (store values, redraw once per batch at most).
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
        job._drain(on_progress)
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
        job._drain(on_progress)
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

    job._timer.timeout.connect(lambda: job._drain(on_progress))
    worker = create_worker(
        func,
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
