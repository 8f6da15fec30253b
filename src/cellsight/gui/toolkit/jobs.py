"""One job at a time per dock: Stop button, progress bar with ETA, status line, busy state.

:class:`JobMixin` wraps :func:`cellsight.gui.workers.start_job` (the only threading) for a
dock widget. A dock calls :meth:`JobMixin.init_jobs` first, places ``stop_button``,
``progress_bar`` and ``status`` in its layout, names the widgets a running job disables
with :meth:`JobMixin.busy_disables`, and starts work with :meth:`JobMixin.run_job`.
Errors reach the status line here and a napari notification (from ``start_job``).
"""

import time

from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton

from cellsight.gui.workers import Job, start_job


def format_seconds(seconds: float) -> str:
    """``"1:05:09"``, ``"4:02"`` or ``"0:07"``."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EtaProgressBar(QProgressBar):
    """A progress bar whose text says how long the job still needs.

    The rate is measured from the job's first progress report, so model loading and
    other set-up time does not distort it.
    """

    def __init__(self):
        super().__init__()
        self._origin: tuple[float, int] | None = None
        self.eta_text = ""

    def begin(self, total: int = 0) -> None:
        """A job starts: ``total`` steps (0 = unknown: a busy indicator)."""
        self._origin = None
        self.eta_text = ""
        self.setRange(0, max(int(total), 0))
        self.setValue(0)
        self.setFormat("%p%")

    def report(self, step: int, total: int) -> None:
        """Show ``step`` of ``total`` and the estimated time left."""
        if not total:
            return
        step = min(int(step), int(total))
        # QProgressBar.setValue repaints at once; with updates off it only schedules one
        # paint, drawn together with the rest of the dock (one window repaint, not two)
        self.setUpdatesEnabled(False)
        self.setRange(0, int(total))
        self.setValue(step)
        now = time.monotonic()
        if self._origin is None or step < self._origin[1]:
            self._origin = (now, step)
        start, first = self._origin
        if step > first and now > start:
            left = (total - step) * (now - start) / (step - first)
            self.eta_text = f"{format_seconds(left)} left"
        self.setFormat(f"%v / %m  {self.eta_text}".rstrip())
        self.setUpdatesEnabled(True)

    def finish(self, done: bool) -> None:
        """The job ended: leave a busy indicator full (done) or empty; keep the count."""
        if self.maximum() == 0:
            self.setRange(0, 1)
            self.setValue(1 if done else 0)
        self.eta_text = ""
        self.setFormat("%v / %m" if self.maximum() > 1 else "%p%")


class JobMixin:
    """The job part of a dock widget (a ``QWidget`` subclass listing this mixin first).

    Attributes
    ----------
    job : Job or None
        The running job (None when idle).
    stop_button, progress_bar, status
        Widgets to place in the dock's layout.
    """

    def init_jobs(self, viewer, idle_text: str = "", stop_text: str = "Stop") -> None:
        """Create the job widgets; call before the dock builds its layout."""
        self.viewer = viewer
        self.job: Job | None = None
        self._busy_widgets: list = []
        self.stop_button = QPushButton(stop_text)
        self.stop_button.setToolTip("Stop the job; what was finished is kept.")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.progress_bar = EtaProgressBar()
        self.status = QLabel(idle_text)
        self.status.setWordWrap(True)

    def busy_disables(self, *widgets) -> None:
        """Disable ``widgets`` while a job runs (buttons, choosers, forms' parents)."""
        self._busy_widgets.extend(widgets)
        self.refresh_buttons()

    @property
    def running(self) -> bool:
        """Whether this dock's job is running."""
        return self.job is not None and self.job.is_running

    def set_running(self, running: bool) -> None:
        """Enable the widgets that fit ``running``, then call :meth:`update_buttons`."""
        for widget in self._busy_widgets:
            getattr(widget, "native", widget).setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.update_buttons(running)

    def update_buttons(self, running: bool) -> None:
        """Hook: enabling that depends on more than the running state (e.g. a model)."""

    def refresh_buttons(self) -> None:
        """Enable the widgets for the current state (callbacks may come in any order)."""
        self.set_running(self.running)

    def run_job(self, func, *args, name: str, status: str = "", total: int = 0,
                on_result=None, on_cancelled=None, on_progress=None, on_batch=None,
                **kwargs) -> Job:
        """Start ``func(*args, progress=, should_stop=, **kwargs)`` as this dock's job.

        ``on_result`` / ``on_cancelled`` / ``on_progress`` run on the main thread (see
        :func:`~cellsight.gui.workers.start_job`); the progress bar, the status line and
        the buttons are handled here.
        """
        self.progress_bar.begin(total)
        if status:
            self.status.setText(status)

        def progress(event) -> None:
            self.progress_bar.report(event.step, event.total)
            if on_progress is not None:
                on_progress(event)

        self.job = start_job(
            func, *args, name=name, total=total, viewer=self.viewer, on_progress=progress,
            on_result=on_result, on_cancelled=on_cancelled, on_error=self.job_failed,
            on_finished=self._job_finished, on_batch=on_batch, **kwargs,
        )
        self.set_running(True)
        return self.job

    def stop(self) -> None:
        """Ask the running job to stop at its next check; what was done is kept."""
        if self.job is not None and self.job.is_running:
            self.job.cancel()
            self.status.setText("Stopping …")

    def job_failed(self, exc: BaseException) -> None:
        """Show why the job failed (the notification comes from ``start_job``)."""
        self.status.setText(f"Failed: {exc}")

    def _job_finished(self) -> None:
        done = self.job is not None and self.job.state == "done"
        self.job = None
        self.progress_bar.finish(done)
        self.set_running(False)
