"""Tracking-by-detection with divisions: detect, build candidates, solve, relabel.

:func:`track` runs the whole chain on a labels time series; the modules hold the
steps (``detections``, ``candidates``, ``solve_ilp``, ``solve_greedy``, ``tracks``)
and the undoable edit model (``editing``).
"""

import time

import numpy as np

from cellsight.config.tracking import TrackingConfig
from cellsight.core.progress import ProgressEvent, never_stop, no_progress
from cellsight.core.tracking import solve_greedy as greedy_solver
from cellsight.core.tracking import solve_ilp as ilp_solver
from cellsight.core.tracking.candidates import CandidateGraph, build_candidates
from cellsight.core.tracking.detections import Detections, check_labels_series, detect
from cellsight.core.tracking.solve_ilp import SolverUnavailableError
from cellsight.core.tracking.tracks import TrackingResult, build_result, napari_tracks

__all__ = [
    "CandidateGraph",
    "Detections",
    "SolverUnavailableError",
    "TrackingConfig",
    "TrackingResult",
    "build_candidates",
    "detect",
    "link",
    "napari_tracks",
    "track",
]


def _stage(progress, share: float, offset: float, total: int = 100):
    """Map a sub-step's progress onto a slice of the whole job."""

    def report(event: ProgressEvent) -> None:
        step = int(offset * total + share * total * event.fraction)
        progress(ProgressEvent(step, total, event.message))

    return report


def link(
    detections: Detections,
    labels: np.ndarray,
    config: TrackingConfig | None = None,
    scale=None,
    progress=no_progress,
    should_stop=never_stop,
) -> TrackingResult:
    """Link given detections into tracks (candidate graph + solver + relabel).

    Examples
    --------
    One nucleus that moves by a pixel and changes its id between two frames:

    >>> frames = np.zeros((2, 32, 32), np.uint16)
    >>> frames[0, 4:10, 4:10] = 1
    >>> frames[1, 5:11, 5:11] = 7
    >>> result = link(detect(frames), frames)
    >>> result.labels.max(axis=(1, 2)).tolist()  # one track: the same id in both frames
    [1, 1]
    """
    config = config or TrackingConfig()
    started = time.perf_counter()
    cand = build_candidates(
        detections, labels, config, scale, _stage(progress, 0.3, 0.2), should_stop
    )
    built = time.perf_counter()
    solve_progress = _stage(progress, 0.45, 0.5)
    stats: dict = {}
    if config.solver == "ilp":
        links = ilp_solver.solve_ilp(
            cand, config.time_limit, solve_progress, should_stop, stats=stats
        )
    else:
        links = greedy_solver.solve_greedy(cand, solve_progress, should_stop)
    solved = time.perf_counter()
    params = dict(cand.parameters, **stats)
    params.update(
        solver=config.solver,
        n_detections=len(detections),
        n_candidate_links=len(cand),
        n_candidate_divisions=len(cand.divisions),
        seconds_candidates=round(built - started, 3),
        seconds_solve=round(solved - built, 3),
    )
    result = build_result(detections, labels, links, params)
    progress(ProgressEvent(100, 100, "tracking done"))
    return result


def track(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    config: TrackingConfig | None = None,
    scale=None,
    progress=no_progress,
    should_stop=never_stop,
) -> TrackingResult:
    """Track the cells of a segmented time-lapse, divisions included.

    Parameters
    ----------
    labels : numpy.ndarray
        Labels ``(T, Y, X)`` or ``(T, Z, Y, X)``; ids need not match across frames.
    image : numpy.ndarray, optional
        Intensities of the same shape (adds mean intensity to the detections).
    config : TrackingConfig, optional
        Solver and costs; the defaults are derived from the data.
    scale : sequence of float, optional
        Pixel size per spatial axis (for anisotropic 3D data).
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    TrackingResult
        Links, track ids per detection and the labels relabelled by track id;
        :func:`napari_tracks` turns it into a napari Tracks layer.

    Raises
    ------
    ValueError
        If the labels are not a 2D+t / 3D+t integer series or are empty.
    SolverUnavailableError
        If ``config.solver == "ilp"`` and motile is not installed.

    Examples
    --------
    >>> lab = np.zeros((3, 32, 32), np.uint16)
    >>> for t in range(3):
    ...     lab[t, 10:16, 10 + t:16 + t] = 5 + t
    >>> result = track(lab, config=TrackingConfig(solver="greedy"))
    >>> result.n_tracks
    1
    """
    labels = check_labels_series(labels, image)
    started = time.perf_counter()
    detections = detect(labels, image, _stage(progress, 0.2, 0.0), should_stop)
    detected = time.perf_counter()
    result = link(detections, labels, config, scale, progress, should_stop)
    result.parameters["seconds_detect"] = round(detected - started, 3)
    return result
