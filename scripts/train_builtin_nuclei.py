"""Train the built-in ``nuclei`` instance model (src/cellsight/models/nuclei).

Data (all from ../shared/data; see docs/models/nuclei.md):

* DSB2018 stage-1 fluorescence (488 images, complete instance masks, many labs): split
  once, stratified by image size, into ``train`` (408), ``tune`` (30: checkpoint and
  threshold choice) and ``val`` (50: the published figures, never read here). The split
  is written to benchmarks/splits/dsb2018_stage1.json (the peer benchmark reads it).
* Fluo-N2DH-GOWT1 01: the 26 sparsely annotated SEG frames (1-3 nuclei labelled each).
  The TRA markers of the same frame show where the unlabelled nuclei are: a margin
  around them is left out of the loss, and their eroded marker is taught as nucleus
  interior. Frames t021 t031 t033 t039 (the test set) are never read.
* Fluo-N2DH-SIM+ 01: even frames (complete SEG masks).
* NIH3T3 (Coelho 2009): binary masks, foreground-only supervision (convex blobs as one
  nucleus, the inside of non-convex blobs ignored). Images 0-11 by number.

The watershed thresholds are then chosen on images the network did not see: the DSB
``tune`` split, SIM+ odd frames, NIH3T3 images 12-17 and the sparse GOWT1 frames (scored
inside their annotated region only), each image at its own ground-truth diameter.

Every image is rescaled so its nuclei are about ``DIAMETER`` pixels wide (times a
seeded random jitter, so the model tolerates sizes around it and its own diameter
estimate has room for error). The non-DSB images (and a quarter of the DSB ones) are
also trained as a blurred, noisy low-light copy. The model card documents the expected
diameter. The single DSB2018 test image (nuclei2d/dsb2018) is not used.

Run from the repository root (4000 steps: about 50 minutes on 2 CPU cores; this CPU has
no native bfloat16, where the training runs in float32 - see core/nn/precision.py):

    nice -n 5 .venv/bin/python scripts/train_builtin_nuclei.py --out src/cellsight/models/nuclei
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from skimage.io import imread  # noqa: E402

from cellsight.config.instances import (  # noqa: E402
    IGNORE,
    INTERIOR,
    InstanceConfig,
    InstancePostConfig,
    InstanceTargetConfig,
)
from cellsight.config.training import TrainConfig  # noqa: E402
from cellsight.config.unet import UNetConfig  # noqa: E402
from cellsight.core.arrays.resize import resize_channels, resize_labels, scaled_shape  # noqa: E402
from cellsight.core.segmentation.instance_targets import (  # noqa: E402
    annotated_region,
    foreground_targets,
    instance_targets,
    median_diameter,
)
from cellsight.io.tiff import read_image  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GOWT1 = DATA / "tracking" / "Fluo-N2DH-GOWT1"
SIM = DATA / "tracking" / "Fluo-N2DH-SIM+"
NIH = DATA / "nuclei2d" / "nih3t3"
DSB = DATA / "nuclei2d" / "dsb2018_stage1"
SPLIT_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "splits" / "dsb2018_stage1.json"
SPLIT_SIZES = {"val": 50, "tune": 30}  # the rest is "train"
DSB_DEGRADED = 0.25  # share of DSB images also trained as a degraded copy
TEST_FRAMES = {"021", "031", "033", "039"}  # GOWT1-01 test set: never read here
DIAMETER = 28.0  # nucleus diameter (pixels) the network is trained for
JITTER = (0.75, 1.33)  # per-image random size factor around DIAMETER
BOUNDARY = 2.0  # boundary band width at the network's resolution
MARGIN = 24.0  # GOWT1: pixels (full resolution) left out around unlabelled markers
MARKER_EROSION = 3  # GOWT1: erode unlabelled markers by this (full resolution) for interior
MIN_SOLIDITY = 0.95  # NIH3T3: blobs at least this convex are single nuclei
SEED = 0


def _number(path: Path) -> int:
    return int(re.findall(r"\d+", path.stem)[-1])


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image[..., 0]


def _rescale(image: np.ndarray, classes: np.ndarray, factor: float):
    shape = scaled_shape(image.shape, factor)
    small = resize_channels(image[None].astype(np.float32), shape)[0]
    return small, resize_labels(classes, shape)


def degraded(image: np.ndarray, rng) -> tuple[np.ndarray, str]:
    """A blurred, low-light copy: Gaussian blur, background offset, Poisson + read noise.

    The training images are clean; real widefield images are often blurred and noisy,
    so every image is also trained in such a copy (the labels stay the same).
    """
    lo, hi = np.percentile(image, [1, 99.8])
    x = np.clip((image - lo) / max(hi - lo, 1e-6), 0, None)
    sigma = rng.uniform(0.0, 1.5)
    peak = float(np.exp(rng.uniform(np.log(10), np.log(200))))
    offset = rng.uniform(0.0, 0.3) * peak
    photons = ndi.gaussian_filter(x, sigma) * peak + offset
    noisy = rng.poisson(photons).astype(np.float32)
    noisy += rng.normal(0.0, rng.uniform(0.0, 0.03) * peak, noisy.shape).astype(np.float32)
    return noisy, f"blur {sigma:.2f}, peak {peak:.0f}, offset {offset:.0f}"


def _allocate(counts: dict, total: int) -> dict:
    """Largest-remainder allocation of ``total`` over groups proportional to ``counts``."""
    n = sum(counts.values())
    raw = {k: total * c / n for k, c in counts.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[: total - sum(out.values())]:
        out[k] += 1
    return out


def dsb_split(seed: int = SEED) -> dict[str, list[str]]:
    """Split DSB2018 stage-1 into train / tune / val, stratified by image shape.

    Deterministic (sorted names, seeded); the names are those of ``images/*.tif``.
    """
    from tifffile import TiffFile

    groups: dict[tuple, list[str]] = {}
    for path in sorted((DSB / "images").glob("*.tif")):
        with TiffFile(path) as tif:
            groups.setdefault(tuple(tif.pages[0].shape[:2]), []).append(path.stem)
    rng = np.random.default_rng(seed)
    split = {"train": [], "tune": [], "val": []}
    remaining = {k: list(rng.permutation(v)) for k, v in groups.items()}
    for part, size in SPLIT_SIZES.items():
        share = _allocate({k: len(v) for k, v in remaining.items()}, size)
        for k, n in share.items():
            split[part] += remaining[k][:n]
            remaining[k] = remaining[k][n:]
    for v in remaining.values():
        split["train"] += v
    return {k: sorted(str(n) for n in v) for k, v in split.items()}


def write_split(split: dict, path: Path = SPLIT_FILE) -> None:
    """Write the split as JSON (with how it was made) for the benchmarks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": "nuclei2d/dsb2018_stage1", "made_by": "scripts/train_builtin_nuclei.py",
           "stratified_by": "image shape", "seed": SEED, **split}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def dsb_images(names: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image, labels)`` of DSB2018 stage-1 images by name."""
    return [(n, read_image(DSB / "images" / f"{n}.tif").data,
             read_image(DSB / "labels" / f"{n}.tif").data) for n in names]


def dsb_frames(rng, names: list[str]) -> list[dict]:
    """DSB training images, each rescaled by its own median nucleus diameter."""
    out = []
    for name, image, lab in dsb_images(names):
        d = median_diameter(lab)
        if d <= 0:
            continue
        factor = DIAMETER / d * rng.uniform(*JITTER)
        out.append({"name": f"DSB {name[:12]}", "factor": factor, "image": _gray(image),
                    "classes": instance_targets(lab, _targets_config(factor)),
                    "degrade": bool(rng.random() < DSB_DEGRADED)})
    return out


def _targets_config(factor: float) -> InstanceTargetConfig:
    return InstanceTargetConfig(
        boundary_width=max(1.0, BOUNDARY / factor), min_solidity=MIN_SOLIDITY
    )


def gowt1_frames(rng) -> list[dict]:
    """Sparse SEG frames with TRA markers marking the unlabelled nuclei."""
    paths = sorted((GOWT1 / "01_GT" / "SEG").glob("man_seg*.tif"))
    paths = [p for p in paths if p.stem[-3:] not in TEST_FRAMES]
    labels = [read_image(p).data for p in paths]
    base = DIAMETER / median_diameter(labels)
    out = []
    for path, lab in zip(paths, labels, strict=True):
        t = path.stem[-3:]
        image = read_image(GOWT1 / "01" / f"t{t}.tif").data
        markers = read_image(GOWT1 / "01_GT" / "TRA" / f"man_track{t}.tif").data
        factor = base * rng.uniform(*JITTER)
        region = annotated_region(lab, markers, margin=MARGIN)
        classes = instance_targets(lab, _targets_config(factor), region)
        unlabelled = (markers > 0) & ~region
        cores = ndi.binary_erosion(unlabelled, iterations=MARKER_EROSION)
        classes[cores & (classes == IGNORE)] = INTERIOR
        out.append({"name": f"GOWT1-01 t{t}", "factor": factor, "image": image, "classes": classes})
    return out


def sim_frames(rng, parity: int) -> list[dict]:
    """SIM+ 01 frames of the given parity (0: training, 1: threshold tuning)."""
    paths = sorted((SIM / "01_GT" / "SEG").glob("man_seg*.tif"))
    paths = [p for p in paths if int(p.stem[-3:]) % 2 == parity]
    labels = [read_image(p).data for p in paths]
    base = DIAMETER / median_diameter(labels)
    out = []
    for path, lab in zip(paths, labels, strict=True):
        t = path.stem[-3:]
        factor = base * rng.uniform(*JITTER)
        image = read_image(SIM / "01" / f"t{t}.tif").data
        out.append(
            {
                "name": f"SIM+-01 t{t}",
                "factor": factor,
                "image": image,
                "classes": instance_targets(lab, _targets_config(factor)),
                "labels": lab,
            }
        )
    return out


def nih3t3_frames(rng) -> list[dict]:
    """NIH3T3 images 0-11 (by number) with binary masks as foreground-only supervision."""
    gts = sorted((NIH / "gt").glob("*.png"), key=_number)[:12]
    masks = [_gray(imread(p)) > 0 for p in gts]
    blobs = [ndi.label(m)[0] for m in masks]
    base = DIAMETER / median_diameter(blobs)
    out = []
    for path, mask in zip(gts, masks, strict=True):
        factor = base * rng.uniform(*JITTER)
        image = _gray(imread(NIH / "img" / f"dna-{_number(path)}.png"))
        classes = foreground_targets(mask, _targets_config(factor))
        out.append({"name": f"NIH3T3 {path.stem}", "factor": factor, "image": image,
                    "classes": classes})
    return out


def build_config(minutes: float, steps: int) -> InstanceConfig:
    """Architecture and training parameters of the built-in model."""
    return InstanceConfig(
        unet=UNetConfig(depth=4, base_channels=16, out_channels=3),
        training=TrainConfig(
            steps=steps,
            batch_size=8,
            patch_size=128,
            learning_rate=2e-3,
            val_fraction=0.05,
            val_every=100,
            patience=0,
            time_limit_minutes=minutes,
            seed=SEED,
            device="auto",
        ),
        targets=InstanceTargetConfig(boundary_width=BOUNDARY, min_solidity=MIN_SOLIDITY),
        diameter=DIAMETER,
    )


def tuning_sets(rng, dsb_names: list[str]) -> list[dict]:
    """Non-test images for choosing the watershed thresholds, with their diameters.

    The DSB ``tune`` split (each image at its own diameter), SIM+ odd frames (every
    4th), NIH3T3 images 12-17 (connected components of the masks as objects) and the
    sparse GOWT1 frames (scored inside their annotated region).
    """
    dsb = [{"name": f"DSB {n[:12]}", "labels": lab, "image": _gray(image),
            "diameter": median_diameter(lab)} for n, image, lab in dsb_images(dsb_names)]
    sim = sim_frames(rng, 1)[::4]
    gts = sorted((NIH / "gt").glob("*.png"), key=_number)[12:]
    nih = [{"name": f"NIH3T3 {p.stem}", "labels": ndi.label(_gray(imread(p)) > 0)[0],
            "image": _gray(imread(NIH / "img" / f"dna-{_number(p)}.png"))} for p in gts]
    paths = sorted((GOWT1 / "01_GT" / "SEG").glob("man_seg*.tif"))
    gowt = []
    for p in paths:
        t = p.stem[-3:]
        if t in TEST_FRAMES:
            continue
        lab = read_image(p).data
        markers = read_image(GOWT1 / "01_GT" / "TRA" / f"man_track{t}.tif").data
        gowt.append({"name": f"GOWT1-01 t{t}", "labels": lab,
                     "image": read_image(GOWT1 / "01" / f"t{t}.tif").data,
                     "region": annotated_region(lab, markers, margin=MARGIN)})
    for group in (sim, nih, gowt):
        d = median_diameter([f["labels"] for f in group])
        for f in group:
            f["diameter"] = d
    return dsb + sim + nih + gowt


def tune_thresholds(model, frames) -> tuple[InstancePostConfig, dict]:
    """Pick the seed / mask thresholds with the best pooled AP@0.5 on non-test images."""
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.evaluation.metrics import MatchResult, match_in_region, match_instances
    from cellsight.core.segmentation.instance_model import (
        instances_from_maps,
        predict_instance_maps,
    )

    maps = [predict_instance_maps(model, f["image"], InstancePredictConfig(
        diameter=f["diameter"], device="cpu")) for f in frames]
    best, scores = None, {}
    for seed_t in (0.3, 0.4, 0.5, 0.6, 0.7):
        for mask_t in (0.4, 0.5, 0.6, 0.7):
            post = InstancePostConfig(seed_threshold=seed_t, mask_threshold=mask_t, min_size=15)
            total = MatchResult(0, 0, 0, ())
            for m, f in zip(maps, frames, strict=True):
                pred = instances_from_maps(m, post)
                if "region" in f:
                    total = total + match_in_region(f["labels"], pred, f["region"])
                else:
                    total = total + match_instances(f["labels"], pred)
            scores[f"seed={seed_t} mask={mask_t}"] = round(total.ap, 4)
            if best is None or total.ap > best[0]:
                best = (total.ap, post)
    return best[1], scores


def main(argv=None) -> int:
    """Build the data, train, tune thresholds, write the model folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="src/cellsight/models/nuclei")
    parser.add_argument("--steps", type=int, default=4000, help="Training steps.")
    parser.add_argument("--dsb-limit", type=int, default=0,
                        help="Use only the first N DSB training images (0 = all; for a quick try).")
    parser.add_argument("--dsb-only", action="store_true",
                        help="Train and tune on the DSB split only (the peer benchmark's "
                        "setting: the same images StarDist and Cellpose get).")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="Optional time limit (0 = none; a limit makes the run depend "
                        "on the machine's speed).")
    args = parser.parse_args(argv)

    from cellsight.core.segmentation.instance_model import InstanceModel
    from cellsight.core.segmentation.semantic import train_semantic

    split = dsb_split()
    if not SPLIT_FILE.exists() or json.loads(SPLIT_FILE.read_text())["val"] != split["val"]:
        write_split(split)
    train_names = split["train"][: args.dsb_limit or None]
    rng = np.random.default_rng(SEED)
    frames = dsb_frames(rng, train_names)
    if not args.dsb_only:
        frames += gowt1_frames(rng) + sim_frames(rng, 0) + nih3t3_frames(rng)
    tune_names = split["tune"][: args.dsb_limit or None]
    tuning = tuning_sets(np.random.default_rng(SEED + 1), tune_names)
    if args.dsb_only:
        tuning = [f for f in tuning if f["name"].startswith("DSB ")]
    images, classes = [], []
    for f in frames:
        small, cls = _rescale(f["image"], f["classes"], f["factor"])
        images.append(small)
        classes.append(cls)
        how = "none"
        if f.get("degrade", True):
            noisy, how = degraded(small, rng)
            images.append(noisy)
            classes.append(cls)
        f["degraded_copy"] = how
        counts = np.bincount(cls.ravel(), minlength=4)
        print(f"{f['name']}: x{f['factor']:.3f} -> {small.shape}, pixels ignore/bg/in/bd "
              f"{counts.tolist()}; copy: {how}", file=sys.stderr)
    print(f"{len(images)} training images", file=sys.stderr)
    config = build_config(args.minutes, args.steps)
    started = time.perf_counter()

    def report(ev):
        if ev.values.get("val_loss") is not None:
            print(f"step {ev.step}: loss {ev.values['loss']:.4f} val {ev.values['val_loss']:.4f} "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    model = train_semantic(images, classes, config, out_dir=args.out, progress=report)
    train_seconds = time.perf_counter() - started
    model = InstanceModel(config=model.config, net=model.net, meta=model.meta)
    post, scores = tune_thresholds(model, tuning)
    model.config = model.config.model_copy(update={"postprocessing": post})
    model.meta["training_data"]["sources"] = [
        {"name": f["name"], "factor": round(f["factor"], 4), "degraded_copy": f["degraded_copy"]}
        for f in frames
    ]
    model.meta["threshold_tuning"] = {"frames": [f["name"] for f in tuning], "ap50": scores}
    model.meta["training_data"]["dsb2018_split"] = "benchmarks/splits/dsb2018_stage1.json"
    model.meta["training_data"]["wall_seconds"] = round(train_seconds, 1)
    model.meta["script"] = "scripts/train_builtin_nuclei.py"
    model.save(args.out)
    (Path(args.out) / "last.pt").unlink(missing_ok=True)  # not shipped: weights.pt is enough
    for path in Path(args.out).iterdir():
        path.chmod(0o644)  # shipped in the wheel: readable by every user
    summary = {k: v for k, v in model.meta["metrics"].items() if k != "history"}
    print(json.dumps({"metrics": summary, "postprocessing": post.model_dump(),
                      "tuning_ap50": scores}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
