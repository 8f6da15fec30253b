"""Nucleus instance segmentation: built-in ``nuclei`` model vs a tuned classical baseline.

Test images (fully annotated, never used for training or tuning):

* Fluo-N2DH-GOWT1 01, frames t021 t031 t033 t039 (1024x1024, 96 nuclei);
* the DSB2018 image of ../shared/data/nuclei2d/dsb2018 (512x512, 125 nuclei).

Scores (micro-averaged over images, one-to-one IoU matching):
AP@0.5 = TP / (TP + FP + FN), AP@0.75, mean IoU of the pairs matched at 0.5.
Time: wall-clock and process CPU seconds per megapixel of input, whole call
(normalisation, network, watershed), 2 threads.

Both methods get the same nucleus diameter per dataset: GOWT1 = median diameter of the
sparse (non-test) GOWT1 annotations; DSB2018 = the diameter the model measures itself
(``estimate_diameter``), since no other annotated image of that kind exists here. The
model is also run with its own diameter estimate on GOWT1, and with the given diameter
off by x0.8 / x1.25, to show how much the size hint matters, and with test-time
augmentation (maps averaged over the 8 flips / 90° rotations).

The baseline (Otsu + distance-transform watershed, ``cellsight.core.segmentation.classical``) is
tuned by a grid over its smoothing, seed distance and minimum size, each relative to
the diameter, on non-test data: the sparse GOWT1 frames (scored on their annotated
region only), SIM+ 01 odd frames and NIH3T3 images 12-17.

Run from the repository root (one run, about 10 minutes on 2 CPU cores):

    nice -n 5 .venv/bin/python benchmarks/instances.py --out benchmarks/results/instances.json
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from skimage.io import imread  # noqa: E402

from cellsight.config.instances import InstancePredictConfig  # noqa: E402
from cellsight.core.evaluation.metrics import MatchResult, match_in_region, match_instances  # noqa: E402
from cellsight.core.segmentation.classical import otsu_watershed  # noqa: E402
from cellsight.core.segmentation.instance_model import (  # noqa: E402
    estimate_diameter,
    load_builtin,
    segment_instances,
)
from cellsight.core.segmentation.instance_targets import annotated_region, median_diameter  # noqa: E402
from cellsight.io.tiff import read_image  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GOWT1 = DATA / "tracking" / "Fluo-N2DH-GOWT1"
SIM = DATA / "tracking" / "Fluo-N2DH-SIM+"
NIH = DATA / "nuclei2d" / "nih3t3"
TEST_FRAMES = ("021", "031", "033", "039")
# baseline grid, relative to the diameter d: sigma = a*d, min_distance = b*d, min_size = c*d^2
GRID = {"a": (0.0, 0.03, 0.06), "b": (0.15, 0.25, 0.35, 0.45), "c": (0.05, 0.15, 0.3)}


def _number(path: Path) -> int:
    return int(re.findall(r"\d+", path.stem)[-1])


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image[..., 0]


def test_images() -> list[dict]:
    out = []
    for t in TEST_FRAMES:
        out.append({
            "dataset": "GOWT1-01",
            "name": f"t{t}",
            "image": read_image(GOWT1 / "01" / f"t{t}.tif").data,
            "labels": read_image(GOWT1 / "01_GT" / "SEG" / f"man_seg{t}.tif").data,
        })
    dsb = DATA / "nuclei2d" / "dsb2018"
    out.append({
        "dataset": "DSB2018",
        "name": "img2d",
        "image": read_image(dsb / "img2d.tif").data,
        "labels": read_image(dsb / "mask2d.tif").data,
    })
    return out


def tuning_images() -> list[dict]:
    """Non-test images with (possibly partial) instance labels for tuning the baseline."""
    out = []
    seg = sorted((GOWT1 / "01_GT" / "SEG").glob("man_seg*.tif"))
    seg = [p for p in seg if p.stem[-3:] not in TEST_FRAMES]
    for p in seg:
        t = p.stem[-3:]
        lab = read_image(p).data
        markers = read_image(GOWT1 / "01_GT" / "TRA" / f"man_track{t}.tif").data
        out.append({"name": f"GOWT1 t{t}", "image": read_image(GOWT1 / "01" / f"t{t}.tif").data,
                    "labels": lab, "region": annotated_region(lab, markers, margin=24)})
    for p in sorted((SIM / "01_GT" / "SEG").glob("man_seg*.tif"))[1::8]:
        out.append({"name": f"SIM+ {p.stem}", "labels": read_image(p).data,
                    "image": read_image(SIM / "01" / f"t{p.stem[-3:]}.tif").data})
    for p in sorted((NIH / "gt").glob("*.png"), key=_number)[12:]:
        out.append({"name": f"NIH3T3 {p.stem}", "labels": ndi.label(_gray(imread(p)) > 0)[0],
                    "image": _gray(imread(NIH / "img" / f"dna-{_number(p)}.png"))})
    groups = {}
    for item in out:
        groups.setdefault(item["name"].split()[0], []).append(item)
    for items in groups.values():  # one diameter per data set, from its labels
        d = median_diameter([i["labels"] for i in items])
        for i in items:
            i["diameter"] = d
    return out


def partial_match(labels, pred, region, threshold=0.5) -> MatchResult:
    """Full matching, or only inside the annotated region of sparse frames."""
    if region is None:
        return match_instances(labels, pred, threshold)
    return match_in_region(labels, pred, region, threshold)


def baseline(image, diameter, a, b, c) -> np.ndarray:
    return otsu_watershed(
        image,
        sigma=a * diameter,
        min_distance=max(1, int(round(b * diameter))),
        min_size=max(1, int(round(c * diameter**2))),
    )


def tune_baseline(items) -> tuple[dict, float]:
    best = ({}, -1.0)
    for a, b, c in itertools.product(GRID["a"], GRID["b"], GRID["c"]):
        total = MatchResult(0, 0, 0, ())
        for it in items:
            pred = baseline(it["image"], it["diameter"], a, b, c)
            total = total + partial_match(it["labels"], pred, it.get("region"))
        print(f"baseline a={a} b={b} c={c}: tuning AP@0.5 {total.ap:.4f}", flush=True)
        if total.ap > best[1]:
            best = ({"a": a, "b": b, "c": c}, total.ap)
    return best


def timed(func, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def score(rows: list[dict]) -> dict:
    out = {}
    for key in sorted({r["dataset"] for r in rows}) + ["all"]:
        sel = [r for r in rows if key in ("all", r["dataset"])]
        m50 = sum((r["m50"] for r in sel), MatchResult(0, 0, 0, ()))
        m75 = sum((r["m75"] for r in sel), MatchResult(0, 0, 0, ()))
        mp = sum(r["image"].size for r in sel) / 1e6
        out[key] = {
            "ap50": round(m50.ap, 4),
            "ap75": round(m75.ap, 4),
            "mean_matched_iou": round(m50.mean_matched_iou, 4),
            "tp_fp_fn": [m50.tp, m50.fp, m50.fn],
            "wall_s_per_mpix": round(sum(r["wall"] for r in sel) / mp, 3),
            "cpu_s_per_mpix": round(sum(r["cpu"] for r in sel) / mp, 3),
        }
    return out


def evaluate(tests, segment) -> dict:
    rows = []
    for it in tests:
        pred, wall, cpu = timed(segment, it)
        rows.append({
            "dataset": it["dataset"], "image": it["image"], "wall": wall, "cpu": cpu,
            "m50": match_instances(it["labels"], pred, 0.5),
            "m75": match_instances(it["labels"], pred, 0.75),
        })
    return score(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/instances.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_builtin("nuclei")
    tests = test_images()
    tuning = tuning_images()
    gowt1_d = next(i["diameter"] for i in tuning if i["name"].startswith("GOWT1"))
    dsb = next(i for i in tests if i["dataset"] == "DSB2018")
    dsb_d = estimate_diameter(model, dsb["image"], InstancePredictConfig(device="cpu"))
    given = {"GOWT1-01": gowt1_d, "DSB2018": dsb_d}
    print(f"diameters given: {given}", flush=True)
    params, tuned_ap = tune_baseline(tuning)

    def run_model(factor=1.0, estimate=False, tta=False):
        def seg(it):
            cfg = InstancePredictConfig(
                diameter=given[it["dataset"]] * factor, estimate_diameter=estimate,
                test_time_augmentation=tta, device="cpu",
            )
            return segment_instances(model, it["image"], cfg)
        return seg

    def run_baseline(it):
        return baseline(it["image"], given[it["dataset"]], **params)

    results = {
        "threads": torch.get_num_threads(),
        "diameters_given": {k: round(v, 2) for k, v in given.items()},
        "model": {"diameter": model.config.diameter,
                  "postprocessing": model.config.postprocessing.model_dump()},
        "baseline_params_relative_to_diameter": params,
        "baseline_tuning_ap50": round(tuned_ap, 4),
        "methods": {},
    }
    methods = {
        "nuclei model (given diameter)": run_model(),
        "nuclei model (given diameter, test-time augmentation)": run_model(tta=True),
        "nuclei model (estimated diameter)": run_model(estimate=True),
        "nuclei model (diameter x0.8)": run_model(0.8),
        "nuclei model (diameter x1.25)": run_model(1.25),
        "Otsu + distance watershed (tuned)": run_baseline,
    }
    for name, seg in methods.items():
        results["methods"][name] = evaluate(tests, seg)
        print(name, json.dumps(results["methods"][name]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
