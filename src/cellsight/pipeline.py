"""The whole pipeline, headless, on the bundled sample data.

``cellsight pipeline --out DIR`` runs it; the README's main command calls that. Each
step writes its results into ``DIR`` (TIFFs, an ``overview.png`` and a
``summary.json`` listing every output with its napari layer type), so the results
can be opened in napari afterwards (``python -m cellsight.gui.results DIR``).

Steps: load the samples, denoise the noisy widefield image (a short Noise2Void run
trained on the noisy image itself, scored against its clean reference), segment nuclei
(the built-in ``nuclei`` model, scored against the DSB2018 masks), segment every frame of
the HeLa time-lapse (all 20 frames) and track its nuclei with divisions (CTC folder, GEFF
store, tracked labels and a lineage figure). ``overview.png`` shows one labelled panel per
result; ``summary.txt`` (also printed by ``cellsight pipeline``) lists every step with its
key figures.
"""

import json
import time
from pathlib import Path

import numpy as np

from cellsight import __version__
from cellsight.core.progress import Cancelled, ProgressEvent, never_stop, no_progress


def _denoise_step(out: Path, record, should_stop=never_stop) -> np.ndarray:
    from cellsight.config.n2v import N2VConfig
    from cellsight.core.denoise import denoise, train_n2v
    from cellsight.core.evaluation.metrics import psnr
    from cellsight.io.tiff import write_image
    from cellsight.plugin.samples import load_sample

    noisy = load_sample("w2s_noisy")
    clean = load_sample("w2s_clean")  # for the score only, never for training
    config = N2VConfig(steps=150, batch_size=16, patch_size=64)
    model = train_n2v(noisy, config, should_stop=should_stop)
    denoised = denoise(model, noisy, should_stop=should_stop)
    write_image(out / "w2s_denoised.tif", denoised, axes="YX")
    record(
        "denoise",
        file="w2s_denoised.tif",
        layer_type="image",
        method=f"Noise2Void trained on the noisy image itself ({config.steps} steps)",
        psnr_noisy_db=psnr(clean, noisy, 255),
        psnr_denoised_db=psnr(clean, denoised, 255),
    )
    return denoised


def _segment_step(out: Path, record) -> tuple[np.ndarray, np.ndarray]:
    from cellsight.core.evaluation.metrics import match_instances
    from cellsight.core.segmentation.nuclei import segment_nuclei
    from cellsight.io.tiff import write_labels
    from cellsight.plugin.samples import load_sample

    image = load_sample("nuclei_2d")
    labels = segment_nuclei(image)  # nucleus diameter measured by the model
    write_labels(out / "nuclei_2d_labels.tif", labels, axes="YX")
    score = match_instances(load_sample("nuclei_2d_masks"), labels, 0.5)
    record(
        "segment",
        file="nuclei_2d_labels.tif",
        layer_type="labels",
        method="built-in nuclei model (U-Net + seeded watershed)",
        n_objects=int(labels.max()),
        ap50_vs_ground_truth=round(score.ap, 4),
    )
    return image, labels


def _timelapse_step(out: Path, record, should_stop) -> tuple[np.ndarray, np.ndarray]:
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.segmentation.instance_model import estimate_diameter
    from cellsight.core.segmentation.nuclei import builtin_nuclei_model, segment_nuclei
    from cellsight.io.tiff import write_labels
    from cellsight.plugin.samples import load_sample

    movie = load_sample("hela_timelapse")
    diameter = estimate_diameter(builtin_nuclei_model(), movie[0]) or None
    labels = np.zeros(movie.shape, np.int32)
    for t, frame in enumerate(movie):
        if should_stop():
            raise Cancelled(partial=labels[:t])
        labels[t] = segment_nuclei(frame, InstancePredictConfig(diameter=diameter or 0.0,
                                                         estimate_diameter=not diameter))
    write_labels(out / "hela_labels.tif", labels, axes="TYX")
    record(
        "segment_timelapse",
        file="hela_labels.tif",
        layer_type="labels",
        method="built-in nuclei model per frame",
        frames=int(movie.shape[0]),
        mean_objects_per_frame=float(np.mean([len(np.unique(f)) - 1 for f in labels])),
    )
    return movie, labels


def _track_step(out: Path, record, movie, labels, should_stop):
    """Track the segmented HeLa nuclei (divisions on); write CTC, GEFF, labels, lineage."""
    from cellsight.config.tracking import TrackingConfig
    from cellsight.core.evaluation.render import lineage_figure
    from cellsight.core.tracking import SolverUnavailableError, napari_tracks, track
    from cellsight.core.tracking.export import export_tracks
    from cellsight.core.tracking.lineage import lineage_layout
    from cellsight.io.tiff import write_labels

    started = time.perf_counter()
    try:
        result = track(labels, movie, TrackingConfig(solver="ilp"), should_stop=should_stop)
    except SolverUnavailableError:  # motile missing: the greedy solver still tracks
        result = track(labels, movie, TrackingConfig(solver="greedy"), should_stop=should_stop)
    layout = lineage_layout(result)
    # the pipeline replaces its own earlier results in --out (and nothing else)
    export_tracks(result, labels, out / "hela_tracks_ctc", "ctc", overwrite=True)
    export_tracks(result, labels, out / "hela_tracks.geff", "geff", overwrite=True)
    write_labels(out / "hela_tracked.tif", result.labels, axes="TYX")
    lengths = [last - first + 1 for first, last, _ in layout.spans.values()]
    lineage_figure(layout, out / "hela_lineage.png",
                   f"HeLa lineage trees: {layout.n_tracks} tracks, {layout.n_divisions} "
                   "divisions (black dots)")
    record(
        "track",
        file="hela_tracked.tif",
        layer_type="labels",
        method=f"tracking by detection with divisions ({result.parameters['solver']} solver)",
        frames=int(labels.shape[0]),
        n_tracks=layout.n_tracks,
        n_divisions=layout.n_divisions,
        mean_track_length_frames=round(float(np.mean(lengths)), 2) if lengths else 0.0,
        ctc="hela_tracks_ctc",
        geff="hela_tracks.geff",
        lineage="hela_lineage.png",
        seconds=round(time.perf_counter() - started, 2),
    )
    return napari_tracks(result.detections, result.parent, result.node_track)[0], layout


def summary_lines(summary: dict) -> list[str]:
    """The summary for people: one line per step with its key figures and files."""
    lines = [f"cellsight {summary['cellsight']} main job on the bundled samples "
             f"({summary['seconds']:.0f} s), results in {summary['out']}"]
    for i, step in enumerate(summary["steps"], 1):
        name = step["step"]
        if name == "denoise":
            gain = step["psnr_denoised_db"] - step["psnr_noisy_db"]
            text = (f"denoise W2S widefield (Noise2Void): PSNR {step['psnr_noisy_db']:.2f} dB "
                    f"-> {step['psnr_denoised_db']:.2f} dB ({gain:+.2f} dB vs the clean "
                    f"reference) -> {step['file']}")
        elif name == "segment":
            text = (f"segment DSB2018 nuclei (built-in model): {step['n_objects']} objects, "
                    f"AP@0.5 vs ground truth {step['ap50_vs_ground_truth']:.3f} -> "
                    f"{step['file']}")
        elif name == "segment_timelapse":
            text = (f"segment HeLa time-lapse: {step['frames']} frames, "
                    f"{step['mean_objects_per_frame']:.1f} nuclei per frame -> {step['file']}")
        elif name == "track":
            text = (f"track HeLa nuclei: {step['n_tracks']} tracks, {step['n_divisions']} "
                    f"divisions, mean track {step['mean_track_length_frames']:.1f} frames "
                    f"({step['seconds']:.1f} s) -> {step['ctc']}/ (CTC), {step['geff']} "
                    f"(GEFF), {step['file']}, {step['lineage']}")
        else:
            text = f"{name} -> {step.get('file', '')}"
        lines.append(f"{i}. {text}")
    lines.append(f"overview: {summary['overview']} (one labelled panel per result)")
    return lines


def _overview(out: Path, steps: dict, noisy, denoised, image, labels, movie, movie_labels,
              tracks, layout) -> None:
    """overview.png: one panel per result, each titled with what it shows and its figure."""
    from cellsight.core.evaluation.render import (
        draw_lineage,
        draw_tracks,
        labelled_overview,
        panel,
    )

    den, seg, lapse, trk = (steps[k] for k in ("denoise", "segment", "segment_timelapse",
                                                "track"))
    last = movie.shape[0] - 1
    panels = [
        (f"1. Noisy widefield input (W2S)\nPSNR {den['psnr_noisy_db']:.1f} dB vs clean "
         "reference", panel(noisy)),
        (f"2. Denoised with Noise2Void\nPSNR {den['psnr_denoised_db']:.1f} dB "
         f"({den['psnr_denoised_db'] - den['psnr_noisy_db']:+.1f} dB)", panel(denoised)),
        (f"3. Nuclei segmented (DSB2018, outlines)\n{seg['n_objects']} objects, AP@0.5 "
         f"{seg['ap50_vs_ground_truth']:.2f} vs ground truth", panel(image, labels)),
        (f"4. HeLa time-lapse, frame {last} segmented\n"
         f"{int(len(np.unique(movie_labels[last])) - 1)} nuclei "
         f"({lapse['mean_objects_per_frame']:.1f} per frame on average)",
         panel(movie[last], movie_labels[last])),
        (f"5. Cell tracks: paths up to frame {last}, a colour each\n"
         f"{trk['n_tracks']} tracks over {trk['frames']} frames, {trk['n_divisions']} "
         "divisions",
         lambda ax, title: draw_tracks(ax, movie[last], tracks, last, title)),
        (f"6. Lineage trees: a line per track, frames left to right\n"
         f"{trk['n_divisions']} divisions (black dot = mother splits), "
         f"{trk['mean_track_length_frames']:.1f} frames per track",
         lambda ax, title: draw_lineage(ax, layout, title)),
    ]
    labelled_overview(panels, out / "overview.png",
                      "cellsight main job: denoise -> segment -> track, on the bundled samples")


def run_pipeline(out_dir, progress=no_progress, should_stop=never_stop) -> dict:
    """Run every step on the bundled samples and write results to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created). Existing files of the same names are replaced
        atomically; nothing else in the folder is touched.
    progress, should_stop : callable
        See :mod:`cellsight.core.progress`.

    Returns
    -------
    dict
        The summary also written to ``summary.json``; its ``summary`` lines (one per step,
        with the key figures) also to ``summary.txt``.
    """
    from cellsight.io.atomic import atomic_path
    from cellsight.plugin.samples import load_sample

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps: list[dict] = []

    def record(name: str, **fields) -> None:
        steps.append({"step": name, **fields})
        progress(ProgressEvent(len(steps), 4, message=name))

    denoised = _denoise_step(out, record, should_stop)
    image, labels = _segment_step(out, record)
    movie, movie_labels = _timelapse_step(out, record, should_stop)
    tracks, layout = _track_step(out, record, movie, movie_labels, should_stop)

    _overview(out, {s["step"]: s for s in steps}, load_sample("w2s_noisy"), denoised, image,
              labels, movie, movie_labels, tracks, layout)
    summary = {
        "cellsight": __version__,
        "inputs": {
            "w2s_noisy": "sample_data/w2s_noisy.tif",
            "nuclei_2d": "sample_data/dsb2018_nuclei.tif",
            "hela_timelapse": "sample_data/hela_timelapse.tif",
        },
        "steps": steps,
        "overview": "overview.png",
        "out": str(out),
        "seconds": round(time.perf_counter() - started, 2),
    }
    summary["summary"] = summary_lines(summary)
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text("\n".join(summary["summary"]) + "\n")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
