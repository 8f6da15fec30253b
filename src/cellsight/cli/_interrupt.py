"""Ctrl-C and SIGTERM during training: stop through the trainer's own stop path.

While a :class:`StopOnSignal` is active and training has begun (the first progress event
past step 0), SIGINT or SIGTERM only raises its ``should_stop`` flag: the trainer finishes
its step and raises :class:`~cellsight.core.progress.Cancelled` with the model trained so
far, which the command saves (atomically, like any model folder) and names in one line;
the exit code is then 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). A second signal,
or one before training begins, aborts at once (``KeyboardInterrupt`` -> exit 130,
``SystemExit(143)``): atomic writes leave nothing half-written under a final name.
The previous handlers are restored on exit.
"""

import os
import signal
import sys
import threading

from cellsight.core.progress import Cancelled, ProgressEvent

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: a signal's name as people know it
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def _say(text: str) -> None:
    """Write one line to stderr from a signal handler (no buffered, re-entrant I/O)."""
    try:
        os.write(sys.stderr.fileno(), f"{text}\n".encode())
    except (OSError, ValueError, AttributeError):
        pass


class StopOnSignal:
    """A ``should_stop`` callable raised by SIGINT / SIGTERM, for the duration of a ``with``.

    Examples
    --------
    >>> with StopOnSignal() as stop:  # doctest: +SKIP
    ...     model = train_semantic(images, labels, config, progress=stop.watch(bars),
    ...                            should_stop=stop)
    """

    def __init__(self):
        self.signum: int | None = None
        self.armed = False
        self._previous: dict[int, object] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """128 + the signal that stopped the run (130 when none did)."""
        return 128 + int(self.signum or signal.SIGINT)

    def watch(self, progress):
        """Wrap a progress callback: the first event past step 0 arms the graceful stop."""

        def watched(event: ProgressEvent) -> None:
            if event.step >= 1:
                self.armed = True
            progress(event)

        return watched

    def _handle(self, signum, frame) -> None:
        if self.armed and self.signum is None:
            self.signum = signum
            _say(f"\ncellsight: {NAMES.get(signum, signum)}: stopping after this step and saving "
                 "the model trained so far (Ctrl-C again to abort at once)")
            return
        self._restore()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        _say("cellsight: terminated")
        raise SystemExit(128 + signum)

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()


def steps_done(model) -> int | None:
    """Training steps a model's ``meta`` records (N2V or U-Net trainer), None if unknown."""
    meta = getattr(model, "meta", None) or {}
    steps = meta.get("steps_done", (meta.get("metrics") or {}).get("steps_done"))
    return None if steps is None else int(steps)


def report_stop(stop: StopOnSignal, exc: Cancelled, folder, save=None) -> int:
    """Save a stopped run's model to ``folder`` and say so in one line; return the exit code.

    ``save(model, folder)`` saves it; ``save=None`` when the trainer already did.
    """
    model = exc.partial
    if model is None or not hasattr(model, "save"):
        print("cellsight: stopped before any training step: nothing saved", file=sys.stderr)
        return stop.exit_code
    if save is not None:
        save(model, folder)
    steps = steps_done(model)
    at = f"at step {steps}" if steps is not None else "early"
    print(f"stopped {at}: model saved to {folder}", file=sys.stderr)
    return stop.exit_code
