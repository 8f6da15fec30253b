"""Tracking benchmark: cellsight vs laptrack (and btrack) on CTC data, scored by traccuracy.

    nice -n 5 .venv/bin/python benchmarks/tracking.py [--out benchmarks/results/tracking.json]

Linking alone: every tool gets the same detections, the ground-truth TRA masks of
Fluo-N2DH-GOWT1/01 and Fluo-N2DH-SIM+/01 with their ids scrambled in every frame (so
the ground-truth identities cannot leak into the result). Each result is written as a
CTC folder and scored with traccuracy (CTCMatcher; TRA, DET, LNK; division precision,
recall, F1 with no frame tolerance). Runtimes are wall-clock seconds (best of two runs) from
the shared detection table to track ids and relabelled masks (and of measuring the
detections, once).

Full pipeline: segmentation of GOWT1/01 frame by frame, then cellsight tracking, TRA
against the ground truth. It uses cellsight's built-in nuclei model when
``cellsight.core`` provides one, otherwise the classical baseline
``cellsight.core.classical.otsu_watershed`` (the report says which).
"""

import argparse
import importlib
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from cellsight.config.tracking import TrackingConfig
from cellsight.core.tracking import build_candidates, detect, link
from cellsight.core.tracking.convert import to_ctc
from cellsight.core.tracking.tracks import build_result
from cellsight.io.ctc import read_ctc, write_ctc

os.environ.setdefault("TQDM_DISABLE", "1")  # traccuracy's progress bars

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "tracking"
BASELINE = {"sigma": 2.0, "min_distance": 15, "min_size": 200}
DATASETS = {"GOWT1-01": "Fluo-N2DH-GOWT1", "SIM+-01": "Fluo-N2DH-SIM+"}


def scramble(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Give every object new random ids, independently in every frame."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    for t, frame in enumerate(labels):
        ids = np.unique(frame)
        ids = ids[ids != 0]
        lut = np.zeros(int(frame.max()) + 1, labels.dtype)
        lut[ids] = rng.permutation(len(ids)) + 1
        out[t] = lut[frame]
    return out


def score(gt_dir: Path, masks: np.ndarray, table: np.ndarray) -> dict:
    """traccuracy CTC + division metrics of one result against a GT TRA folder."""
    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data
    from traccuracy.matchers import CTCMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_ctc(tmp, masks, table)
        pred = load_ctc_data(tmp, str(Path(tmp) / "res_track.txt"), name="pred")
        gt = load_ctc_data(str(gt_dir), str(gt_dir / "man_track.txt"), name="gt")
        results, _ = run_metrics(gt, pred, CTCMatcher(), [CTCMetrics(), DivisionMetrics()])
    out = {}
    for res in results:
        values = res["results"]
        values = values.get("Frame Buffer 0", values)
        for key in ("TRA", "DET", "LNK"):
            if key in values:
                out[key] = round(float(values[key]), 4)
        for key, name in (
            ("Division Precision", "div_precision"),
            ("Division Recall", "div_recall"),
            ("Division F1", "div_f1"),
        ):
            if key in values:
                out[name] = round(float(values[key]), 4)
        for key in (
            "Total GT Divisions",
            "True Positive Divisions",
            "False Positive Divisions",
            "False Negative Divisions",
        ):
            if key in values:
                out[key.lower().replace(" ", "_")] = int(values[key])
    return out


def laptrack_links(det, params: dict) -> np.ndarray:
    """Link the same detections with laptrack (distances from the same data scale)."""
    from laptrack import LapTrack

    slices = det.frame_slices()
    coords = [det.centroid[s] for s in slices]
    lt = LapTrack(
        cutoff=params["max_distance"] ** 2,
        gap_closing_cutoff=params["max_distance"] ** 2,
        gap_closing_max_frame_count=2,
        splitting_cutoff=params["division_radius"] ** 2,
        merging_cutoff=False,
    )
    graph = lt.predict(coords)
    links = [
        (slices[a[0]].start + a[1], slices[b[0]].start + b[1])
        for a, b in graph.edges()
    ]
    links = [(s, d) if det.t[s] < det.t[d] else (d, s) for s, d in links]
    return np.asarray(links, np.int64).reshape(-1, 2)


def _timed(func, *args, repeat: int = 1, **kwargs):
    """Value and the best wall-clock seconds of ``repeat`` runs (the first warms caches/JIT)."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        value = func(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return value, round(best, 3)


def laptrack_result(det, labels, params):
    """laptrack links turned into track ids and relabelled masks (as cellsight outputs)."""
    return build_result(det, labels, laptrack_links(det, params))


def bench_linking(key: str) -> dict:
    """All tools on one dataset, from the same scrambled GT detections."""
    gt_dir = DATA / DATASETS[key] / "01_GT" / "TRA"
    gt = read_ctc(gt_dir, with_image=False)
    labels = scramble(gt.labels)
    det, t_detect = _timed(detect, labels)
    rows = {}
    for solver in ("ilp", "greedy"):
        config = TrackingConfig(solver=solver)
        result, seconds = _timed(link, det, labels, config, repeat=2)
        masks, table = to_ctc(result, labels)
        rows[f"cellsight ({solver})"] = {"seconds_link": seconds, **score(gt_dir, masks, table)}
    params = build_candidates(det, labels).parameters
    try:
        result, seconds = _timed(laptrack_result, det, labels, params, repeat=2)
        masks, table = to_ctc(result, labels)
        rows["laptrack"] = {"seconds_link": seconds, **score(gt_dir, masks, table)}
    except ImportError as exc:
        rows["laptrack"] = {"not_run": f"laptrack is not installed ({exc})"}
    rows["btrack"] = btrack_status()
    return {
        "frames": int(labels.shape[0]),
        "shape": list(labels.shape[1:]),
        "detections": len(det),
        "seconds_detect": t_detect,
        "derived_parameters": params,
        "tools": rows,
    }


def btrack_status() -> dict:
    """btrack installs from PyPI, but its cell model config is fetched from the network."""
    try:
        import btrack  # noqa: F401
    except ImportError:
        return {"not_run": "btrack does not install here"}
    return {
        "not_run": "btrack installs from PyPI, but its motion-model config "
        "(btrack.datasets.cell_config) is downloaded at run time, which this "
        "offline machine cannot do"
    }


def builtin_segmenter():
    """cellsight's built-in nuclei model as ``f(frame) -> labels``, or None if absent."""
    for module, name in (
        ("cellsight.core.nuclei", "segment_nuclei"),
        ("cellsight.core.segment", "segment_nuclei"),
        ("cellsight.core.builtin", "segment_nuclei"),
    ):
        try:
            func = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if callable(func):
            return func
    return None


def bench_pipeline() -> dict:
    """Segment GOWT1/01 frame by frame, track, and score TRA."""
    from cellsight.core.classical import otsu_watershed
    from cellsight.core.tracking import track

    seq = DATA / "Fluo-N2DH-GOWT1" / "01"
    gt_dir = DATA / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA"
    image = read_ctc(gt_dir).image
    if image is None:
        raise FileNotFoundError(f"No raw frames found in {seq}.")
    segment = builtin_segmenter()
    out = {}
    if segment is None:
        out["builtin_model"] = "not run: cellsight.core provides no built-in nuclei model yet"
        method = (
            "classical baseline otsu_watershed per frame "
            f"(sigma={BASELINE['sigma']}, min_distance={BASELINE['min_distance']}, "
            f"min_size={BASELINE['min_size']}: scaled to GOWT1's ~46 px nuclei)"
        )

        def segment(frame):
            return otsu_watershed(frame, **BASELINE)

    else:
        method = "cellsight built-in nuclei model"
    start = time.perf_counter()
    labels = np.stack([segment(frame) for frame in image]).astype(np.uint32)
    t_seg = round(time.perf_counter() - start, 2)
    result, t_track = _timed(track, labels, image)
    masks, table = to_ctc(result, labels)
    out.update(
        segmentation=method,
        seconds_segment=t_seg,
        seconds_track=t_track,
        n_tracks=result.n_tracks,
        **score(gt_dir, masks, table),
    )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tracking.json"))
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    machine = platform.processor() or platform.machine()
    report = {"machine": f"{machine}, python {platform.python_version()}"}
    for key in args.datasets:
        report[key] = bench_linking(key)
        print(key, json.dumps(report[key]["tools"], indent=1), flush=True)
    if not args.skip_pipeline:
        report["pipeline GOWT1-01"] = bench_pipeline()
        print(json.dumps(report["pipeline GOWT1-01"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
