"""The one progress printer of the command line: tqdm bars on stderr.

Every command passes a :class:`ProgressBars` as the ``progress`` callback of the core
functions. A bar follows one counted run of work: a new bar opens when the total changes
or the step goes back (a new stage starts counting), and closes when its step reaches
the total. The event's message is the bar's description, so a job that reports its
stages on one count (tracking, fine-tuning) keeps one bar whose text names the stage.
Numbers in ``event.values`` (loss, val_loss, ...) show as the bar's postfix.
"""

import sys
from numbers import Real

from tqdm import tqdm

from cellsight.core.progress import ProgressEvent


class ProgressBars:
    """A ``progress`` callback that draws tqdm bars on stderr.

    Parameters
    ----------
    label : str
        Name of the command, shown before each bar's message (``"train: training"``).

    Examples
    --------
    >>> with ProgressBars("train") as progress:  # doctest: +SKIP
    ...     train_semantic(images, labels, config, progress=progress)
    """

    def __init__(self, label: str = ""):
        self.label = label
        self._bar: tqdm | None = None
        self._total = 0
        self._step = 0

    def __call__(self, event: ProgressEvent) -> None:
        description = self._describe(event.message)
        if self._bar is None or event.total != self._total or event.step < self._step:
            self._open(event.total, description)
        bar = self._bar
        self._step = event.step
        if description != bar.desc:
            bar.set_description_str(description, refresh=False)
        postfix = _numbers(event.values)
        if postfix:
            bar.set_postfix(postfix, refresh=False)
        bar.update(event.step - bar.n)
        if event.total and event.step >= event.total:
            self.close()

    def _describe(self, message: str) -> str:
        return ": ".join(part for part in (self.label, message) if part)

    def _open(self, total: int, description: str) -> None:
        self.close()
        stream = sys.stderr  # looked up now: tests and callers may redirect it
        interactive = hasattr(stream, "isatty") and stream.isatty()
        self._bar = tqdm(
            total=total or None,
            desc=description,
            file=stream,
            dynamic_ncols=interactive,
            mininterval=0.1 if interactive else 1.0,
            leave=True,
        )
        self._total, self._step = total, 0

    def close(self) -> None:
        """Close the open bar (if any); the next event opens a new one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "ProgressBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _numbers(values: dict) -> dict[str, str]:
    """The plain numbers of ``values``, formatted for a bar's postfix."""
    return {
        key: f"{value:.4g}"
        for key, value in values.items()
        if isinstance(value, Real) and not isinstance(value, bool)
    }
