"""The whole pipeline, headless, on the bundled sample data.

``cellsight pipeline --out DIR`` runs it; the README's main command calls that. Each
step writes its results into ``DIR`` (TIFFs, an ``overview.png`` and a
``summary.json`` listing every output with its napari layer type), so the results
can be opened in napari afterwards (``python -m cellsight.gui.results DIR``).

Steps today: load the samples, denoise the noisy widefield image (a short Noise2Void
run trained on the noisy image itself, scored against its clean reference), segment
nuclei (the built-in ``nuclei`` model, scored against the DSB2018 masks) and segment
every frame of the HeLa time-lapse.
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
        The summary also written to ``summary.json``.
    """
    from cellsight.core.evaluation.render import montage, panel
    from cellsight.io.atomic import atomic_path
    from cellsight.plugin.samples import load_sample

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps: list[dict] = []

    def record(name: str, **fields) -> None:
        steps.append({"step": name, **fields})
        progress(ProgressEvent(len(steps), 3, message=name))

    denoised = _denoise_step(out, record, should_stop)
    image, labels = _segment_step(out, record)
    movie, movie_labels = _timelapse_step(out, record, should_stop)

    picture = montage(
        [
            panel(load_sample("w2s_noisy")),
            panel(denoised),
            panel(image, labels),
            panel(movie[-1], movie_labels[-1]),
        ]
    )
    import imageio.v3 as iio

    with atomic_path(out / "overview.png") as tmp:
        iio.imwrite(tmp, picture, extension=".png")
    summary = {
        "cellsight": __version__,
        "inputs": {
            "w2s_noisy": "sample_data/w2s_noisy.tif",
            "nuclei_2d": "sample_data/dsb2018_nuclei.tif",
            "hela_timelapse": "sample_data/hela_timelapse.tif",
        },
        "steps": steps,
        "overview": "overview.png",
        "seconds": round(time.perf_counter() - started, 2),
    }
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
