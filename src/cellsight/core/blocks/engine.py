"""The engine blocks run on: dask.distributed, in-process threads by default.

One API for the three set-ups a user has: in-process threads (``Engine()``), a local
cluster of worker processes (``Engine(workers=N)``, a ``distributed.LocalCluster``) and a
running cluster (``Engine(scheduler="tcp://host:8786")``, e.g. one started by
dask-jobqueue's ``SLURMCluster``). :func:`run_blocks` submits one task per block with
retries, counts finished blocks as progress, and on a stop request cancels what has not
started and returns the blocks that finished.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)


@dataclass
class Engine:
    """Where blocks run. Use as a context manager (it starts and closes the client).

    Parameters
    ----------
    workers : int, optional
        Start a ``distributed.LocalCluster`` of this many worker processes (one thread
        each). None: in-process threads.
    scheduler : str, optional
        Address of a running dask scheduler to connect to (overrides ``workers``).
    threads : int
        Threads of the in-process engine. One by default: the network already uses
        every core, and more threads would fight over them.
    retries : int
        Times a failing block is tried again before the job fails.

    Examples
    --------
    >>> with Engine() as engine:
    ...     done = run_blocks(engine, lambda i: i * i, [1, 2, 3])
    >>> sorted(done.values())
    [1, 4, 9]
    """

    workers: int | None = None
    scheduler: str | None = None
    threads: int = 1
    retries: int = 2
    client: Any = field(default=None, repr=False)
    _cluster: Any = field(default=None, repr=False)

    @property
    def in_process(self) -> bool:
        """True when blocks run in this process's threads (they share its memory)."""
        return self.scheduler is None and not self.workers

    def __enter__(self) -> "Engine":
        from distributed import Client, LocalCluster

        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1; got {self.workers}.")
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="20s", set_as_default=False)
            except OSError as exc:
                raise ValueError(
                    f"No dask scheduler answers at {self.scheduler!r} ({exc})."
                ) from exc
        elif self.workers:
            self._cluster = LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=40,
            )
            self.client = Client(self._cluster, set_as_default=False)
        else:
            self._cluster = LocalCluster(
                n_workers=1, threads_per_worker=max(1, self.threads), processes=False,
                dashboard_address=None, silence_logs=40,
            )
            self.client = Client(self._cluster, set_as_default=False)
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        self.client = self._cluster = None

    def share(self, obj: Any) -> Any:
        """Send ``obj`` (a model) to every worker once; pass the result to tasks.

        Also in-process: a model given to each task as a plain argument was copied into
        every submitted task (about 15 MB for the built-in model, so 5 GB of a 16384^2
        run's 768 tasks); scattered once, the tasks share one copy.
        """
        return self.client.scatter(obj, broadcast=True, hash=False)


def run_blocks(
    engine: Engine,
    func: Callable[..., Any],
    items: Sequence[Any],
    *args: Any,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
    message: str = "blocks",
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> dict[int, Any]:
    """Run ``func(item, *args)`` for every item on the engine; results by item position.

    The engine's client is not made dask's default (``set_as_default=False``), so other
    dask work in the process (napari drawing a lazy layer) keeps its own scheduler.
    Failing tasks are retried ``engine.retries`` times; a task that still fails raises
    its error here (the other tasks are cancelled). Progress counts finished items. A
    stop request cancels the tasks that have not finished and raises
    :class:`~cellsight.core.progress.Cancelled` whose ``partial`` is the dict of the
    results that did finish (their output is written and stays readable).
    """
    total = progress_total if progress_total is not None else len(items)
    futures = {
        engine.client.submit(_run_and_trim, func, item, *args, retries=engine.retries,
                             pure=False): i
        for i, item in enumerate(items)
    }
    done: dict[int, Any] = {}
    remaining = list(futures)
    start = time.monotonic()
    try:
        while remaining:
            if should_stop():
                raise Cancelled(partial=done)
            finished = [f for f in remaining if f.done()]
            if not finished:
                time.sleep(0.05)
                continue
            remaining = [f for f in remaining if not f.done() or f not in finished]
            for fut in finished:
                done[futures[fut]] = fut.result()
                progress(_event(progress_offset + len(done), total, message, start, len(done)))
    except BaseException:
        engine.client.cancel(remaining)
        raise
    return done


def _run_and_trim(func, item, *args):
    """Run one task, then hand the memory it freed back to the system (glibc only).

    Blocks allocate and free large arrays in several threads; without a trim the C
    allocator keeps those pages, and the process's memory creeps up block after block.
    """
    try:
        return func(item, *args)
    finally:
        malloc_trim()


def malloc_trim() -> None:
    """Give freed heap memory back to the operating system (no-op outside glibc)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        return


def _event(step: int, total: int, message: str, start: float, finished: int) -> ProgressEvent:
    elapsed = time.monotonic() - start
    return ProgressEvent(step, total, message, {"seconds_per_block": elapsed / finished})

