"""Fine-tuning the built-in ``nuclei`` model on corrections, and the review list's precision.

Domain shift: BBBC050 mouse-embryo nuclei (../shared/data/nuclei3d/bbbc050, 6 time points
t001 ... t501, each a (51, 114, 112) stack with complete 3D instance labels). The built-in
model is 2D; it segments every Z slice on its own (no rescaling: the model's own scale,
which scores better here than rescaling by the labels' median slice diameter).

* Corrections: the ground truth of ONE time point (t501, the one with most nuclei, where
  the model is worst), used as the user's corrected labels of that whole stack: every Z
  slice counts as a reviewed 2D frame. ``fine_tune`` keeps 25 % of those slices aside and
  reports AP@0.5 on them before -> after; then the saved model is scored on the OTHER
  five time points. A second run uses only two 2D slices of t501 (the two with most
  nuclei) as the corrections.
* Test: every Z slice of t001 ... t401 that holds at least one annotated nucleus; the
  slice of the 3D labels is the 2D ground truth. AP@0.5 = TP / (TP + FP + FN), one-to-one
  IoU matching, pooled over slices. Objects predicted on slices without any nucleus are
  counted separately (``empty_slice_objects``).
* Fine-tuning uses ``FineTuneConfig()`` unchanged: the defaults of the dock widget and of
  ``cellsight train --task instance --from nuclei`` without ``--steps``. Time: wall and
  process CPU seconds of the whole ``fine_tune`` call (held-out check included) and of
  the training alone, 2 threads.
* Review list: the base model's prediction of each test time point is ranked by
  ``review_objects`` (4 test-time augmentations). A listed object is a real ERROR when
  the one-to-one matching at IoU >= 0.5 gives it no ground-truth partner (a spurious
  object, a merge or split, or a badly outlined nucleus: the false positives of AP@0.5).
  Precision of the top 20 of each time point's list vs the base error rate (errors / all
  predicted objects), which is the expected precision of a random order.

Run from the repository root (one run, about 15-20 minutes on 2 CPU cores):

    nice -n 5 .venv/bin/python benchmarks/finetune.py --out benchmarks/results/finetune.json
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cellsight.config.finetune import FineTuneConfig  # noqa: E402
from cellsight.config.instances import InstancePredictConfig  # noqa: E402
from cellsight.core.curation.finetune import fine_tune  # noqa: E402
from cellsight.core.curation.review import review_objects  # noqa: E402
from cellsight.core.evaluation.metrics import MatchResult, iou_matrix, match_instances  # noqa: E402
from cellsight.core.segmentation.instance_model import (  # noqa: E402
    InstanceModel,
    load_builtin,
    segment_instances,
)
from cellsight.io.tiff import read_image  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nuclei3d" / "bbbc050"
CORRECTED = "t501"
TEST = ("t001", "t101", "t201", "t301", "t401")
PREDICT = InstancePredictConfig(mode="t", diameter=0.0, device="cpu")
TOP = 20


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    image = read_image(DATA / "images" / f"Emb1_{name}.tif").data.astype(np.float32)
    labels = read_image(DATA / "labels" / f"Emb1_{name}.tif").data.astype(np.int32)
    return image, labels


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def evaluate(model: InstanceModel, tests: dict) -> tuple[dict, dict]:
    """AP@0.5 pooled over annotated slices; objects found on empty slices."""
    total, per, empty, preds = MatchResult(0, 0, 0, ()), {}, 0, {}
    for name, (image, labels) in tests.items():
        pred = segment_instances(model, image, PREDICT)
        preds[name] = pred
        r = MatchResult(0, 0, 0, ())
        for z in range(len(labels)):
            if labels[z].any():
                r = r + match_instances(labels[z], pred[z])
            else:
                empty += int(pred[z].max())
        per[name] = round(r.ap, 4)
        total = total + r
    return {"ap50": round(total.ap, 4), "tp": total.tp, "fp": total.fp, "fn": total.fn,
            "per_time_point": per, "empty_slice_objects": empty}, preds


def error_objects(labels: np.ndarray, pred: np.ndarray) -> set[tuple[int, int]]:
    """(slice, id) of predicted objects without a ground-truth partner at IoU >= 0.5."""
    from scipy.optimize import linear_sum_assignment

    errors = set()
    for z in range(len(pred)):
        ids = np.unique(pred[z])
        ids = ids[ids != 0]
        if not ids.size:
            continue
        iou, _, p_ids = iou_matrix(labels[z], pred[z])
        matched = set()
        if iou.size:
            rows, cols = linear_sum_assignment(np.where(iou >= 0.5, -iou, 0.0))
            matched = {int(p_ids[c]) for r, c in zip(rows, cols, strict=True)
                       if iou[r, c] >= 0.5}
        errors |= {(z, int(i)) for i in ids if int(i) not in matched}
    return errors


def review_precision(model, tests: dict, preds: dict) -> dict:
    out, hits, listed, n_err, n_obj = {}, 0, 0, 0, 0
    start = time.perf_counter()
    for name, (image, labels) in tests.items():
        pred = preds[name]
        errors = error_objects(labels, pred)
        result = review_objects(model, image, pred, PREDICT, n_views=4)
        top = result.items[:TOP]
        found = sum((it.frame, it.label) in errors for it in top)
        total = len(result.items)
        out[name] = {"objects": total, "errors": len(errors), "top": len(top),
                     "errors_in_top": found,
                     "precision_top": round(found / max(len(top), 1), 4),
                     "base_rate": round(len(errors) / max(total, 1), 4)}
        hits, listed, n_err, n_obj = hits + found, listed + len(top), n_err + len(errors), \
            n_obj + total
        print(name, json.dumps(out[name]), flush=True)
    return {"per_time_point": out, "precision_top": round(hits / listed, 4),
            "base_rate": round(n_err / n_obj, 4), "errors_in_top": hits, "listed": listed,
            "seconds": round(time.perf_counter() - start, 1)}


def run_fine_tune(images, labels, reviewed, out_dir) -> tuple[dict, InstanceModel]:
    wall, cpu, loads = time.perf_counter(), time.process_time(), load_avg()
    result = fine_tune(images, labels, FineTuneConfig(), base="nuclei", reviewed=reviewed,
                       out_dir=out_dir)
    info = {
        "held_out": result.held_out,
        "held_out_ap50_before": round(result.before_ap, 4),
        "held_out_ap50_after": round(result.after_ap, 4),
        "kept": result.kept,
        "steps_done": result.steps_done,
        "stop_reason": result.model.meta["metrics"]["stop_reason"],
        "train_wall_s": result.seconds,
        "fine_tune_wall_s": round(time.perf_counter() - wall, 1),
        "fine_tune_cpu_s": round(time.process_time() - cpu, 1),
        "load_before": loads,
        "load_after": load_avg(),
    }
    print("fine-tune", json.dumps(info), flush=True)
    return info, result.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/finetune.json"))
    parser.add_argument("--skip-review", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    tests = {name: load(name) for name in TEST}
    base = load_builtin("nuclei")
    results = {"threads": 2, "config": FineTuneConfig().model_dump(), "load_start": load_avg()}
    results["before"], preds = evaluate(base, tests)
    print("before", json.dumps(results["before"]), flush=True)
    if not args.skip_review:
        results["review"] = review_precision(base, tests, preds)
        print("review", json.dumps(results["review"]), flush=True)
    image, labels = load(CORRECTED)
    richest = np.argsort([-len(np.unique(s)) for s in labels])[:2]
    runs = {
        "one_stack": ([image], [labels], [range(len(labels))]),
        "two_slices": ([image[z] for z in richest], [labels[z] for z in richest], None),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for key, (imgs, labs, reviewed) in runs.items():
            info, model = run_fine_tune(imgs, labs, reviewed, Path(tmp) / key)
            info["after"], _ = evaluate(model, tests)
            info["gain_ap50"] = round(info["after"]["ap50"] - results["before"]["ap50"], 4)
            results[key] = info
            print(key, json.dumps(info["after"]), "gain", info["gain_ap50"], flush=True)
    results["two_slices"]["slices"] = [int(z) for z in richest]
    results["load_end"] = load_avg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
