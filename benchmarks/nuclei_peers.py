"""Nuclei from scratch, side by side: cellsight vs StarDist vs Cellpose on DSB2018 (issue 15).

Same data, same budget, same machine, one run:

* training images: the ``train`` names of benchmarks/splits/dsb2018_stage1.json (408
  DSB2018 stage-1 fluorescence images, complete masks); the ``tune`` names (30) are each
  tool's own validation / threshold-optimisation data; the ``val`` names (50) are scored.
* budget: ``--budget-minutes`` of training wall clock for every tool, one after the
  other on the same 2 cores (each tool's threshold optimisation is timed apart).
* cellsight: scripts/train_builtin_nuclei.py ``--dsb-only --minutes B`` (the recipe of
  the built-in model, restricted to the same images; its cosine schedule follows the
  time limit); prediction with the model's own diameter estimate, as in the dock.
* StarDist: benchmarks/peers/stardist_peer.py in its own venv (stardist 0.9.2, CPU
  TensorFlow 2.15.1; the 2D example notebook's recipe, stopped at the budget; its
  ``optimize_thresholds`` on the tune images).
* Cellpose: benchmarks/peers/cellpose_peer.py in its own venv (cellpose 3.1.1.2, torch
  2.13.0 CPU; ``train_seg`` from scratch with its CLI defaults, the number of epochs
  that fits the budget; prediction with ``diameter=None``, i.e. its diam_mean
  rescaling, as a from-scratch model without a size model gives).

Scores, all computed here from the label TIFFs each tool wrote: AP@0.5 = TP / (TP + FP
+ FN) micro-averaged over the 50 images (one-to-one IoU matching), AP@0.75, mean IoU of
the pairs matched at 0.5; prediction seconds per megapixel as each tool timed its own
calls (cellsight: diameter estimate + network + watershed; StarDist: predict_instances;
Cellpose: eval).

Run from the repository root (3 x budget + about 15 minutes; venvs as in
benchmarks/peers/requirements-*.txt):

    nice -n 5 .venv/bin/python benchmarks/nuclei_peers.py --budget-minutes 30 \\
        --work /work/peers --out benchmarks/results/nuclei_peers.json
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "nuclei2d" / "dsb2018_stage1"
SPLIT = REPO / "benchmarks" / "splits" / "dsb2018_stage1.json"
VENVS = {"stardist": Path("/work/venvs/stardist"), "cellpose": Path("/work/venvs/cellpose")}


def run(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; return its wall seconds (exit on failure)."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO).returncode
    if rc != 0:
        sys.exit(f"{cmd[1]} failed (exit {rc}); see {log}")
    return time.perf_counter() - start


def train_cellsight(work: Path, minutes: float, limit: int) -> dict:
    out = work / "cellsight" / "model"
    cmd = [sys.executable, "scripts/train_builtin_nuclei.py", "--dsb-only", "--out", str(out),
           "--minutes", str(minutes), "--steps", "100000"]
    if limit:
        cmd += ["--dsb-limit", str(limit)]
    wall = run(cmd, work / "cellsight" / "train.log")
    meta = json.loads((out / "meta.json").read_text())
    return {"script_wall_seconds": round(wall, 1),
            "train_wall_seconds": meta["training_data"].get("wall_seconds"),
            "steps_done": meta["metrics"].get("steps_done"),
            "stop_reason": meta["metrics"].get("stop_reason")}


def predict_cellsight(work: Path, names: list[str]) -> dict:
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.segmentation.instance_model import (
        InstanceModel,
        estimate_diameter,
        segment_instances,
    )
    from cellsight.io.tiff import read_image, write_labels

    model = InstanceModel.load(work / "cellsight" / "model")
    pred_dir = work / "cellsight" / "pred"
    pred_dir.mkdir(parents=True, exist_ok=True)
    seconds = mpix = 0.0
    config = InstancePredictConfig(mode="2d", device="cpu")
    for name in names:
        image = read_image(DATA / "images" / f"{name}.tif").data
        image = image if image.ndim == 2 else image[..., 0]
        start = time.perf_counter()
        d = estimate_diameter(model, image, config)
        labels = segment_instances(model, image, config.model_copy(update={"diameter": d}))
        seconds += time.perf_counter() - start
        mpix += image.size / 1e6
        write_labels(pred_dir / f"{name}.tif", labels.astype(np.uint16))
    return {"predict_seconds_per_megapixel": round(seconds / mpix, 3)}


def peer(tool: str, work: Path, budget_s: float, limits: dict, extra: list[str]) -> dict:
    python = VENVS[tool] / "bin" / "python"
    if not python.exists():
        return {"not_run": f"no venv at {VENVS[tool]} (see benchmarks/peers/"
                f"requirements-{tool}.txt)"}
    folder = work / tool
    cmd = [str(python), f"benchmarks/peers/{tool}_peer.py", "--split", str(SPLIT), "--data",
           str(DATA), "--budget-seconds", str(budget_s), "--workdir", str(folder / "work"),
           "--out", str(folder / "pred"), *extra]
    for key, value in limits.items():
        if value:
            cmd += [f"--limit-{key}", str(value)]
    run(cmd, folder / "run.log")
    summary = json.loads((folder / "pred" / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k != "per_image"}


def score(pred_dir: Path, names: list[str]) -> dict:
    from cellsight.core.evaluation.metrics import MatchResult, match_instances
    from cellsight.io.tiff import read_image

    total = total75 = MatchResult(0, 0, 0, ())
    per = {}
    for name in names:
        labels = read_image(DATA / "labels" / f"{name}.tif").data
        pred = read_image(pred_dir / f"{name}.tif").data
        r, r75 = match_instances(labels, pred), match_instances(labels, pred, 0.75)
        total, total75 = total + r, total75 + r75
        per[name] = round(r.ap, 4)
    return {"ap50": round(total.ap, 4), "ap75": round(total75.ap, 4),
            "mean_matched_iou": round(total.mean_matched_iou, 4), "tp": total.tp,
            "fp": total.fp, "fn": total.fn, "per_image_ap50": per}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--work", type=Path, default=Path("/work/peers"))
    parser.add_argument("--tools", default="cellsight,stardist,cellpose")
    parser.add_argument("--cellpose-nimg-per-epoch", type=int, default=0,
                        help="Cellpose's own --nimg_per_epoch (0 = all training images).")
    parser.add_argument("--limit-train", type=int, default=0, help="Quick try only.")
    parser.add_argument("--limit-val", type=int, default=0, help="Quick try only.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                        "nuclei_peers.json")
    args = parser.parse_args(argv)
    split = json.loads(SPLIT.read_text())
    names = split["val"][: args.limit_val or None]
    work = args.work
    if work.exists() and any(work.iterdir()):
        sys.exit(f"{work} is not empty: give a new --work folder.")
    tools = args.tools.split(",")
    report = {"budget_minutes": args.budget_minutes, "split": str(SPLIT.relative_to(REPO)),
              "val_images": len(names), "threads": 2, "tools": {}}
    for tool in tools:
        (work / tool).mkdir(parents=True, exist_ok=True)
        if tool == "cellsight":
            info = train_cellsight(work, args.budget_minutes, args.limit_train)
            info |= predict_cellsight(work, names)
        else:
            extra = []
            if tool == "cellpose" and args.cellpose_nimg_per_epoch:
                extra = ["--nimg-per-epoch", str(args.cellpose_nimg_per_epoch)]
            info = peer(tool, work, args.budget_minutes * 60,
                        {"train": args.limit_train, "val": args.limit_val}, extra)
        if "not_run" not in info:
            info["scores"] = score(work / tool / "pred", names)
            print(tool, json.dumps({k: v for k, v in info["scores"].items()
                                    if k != "per_image_ap50"}), flush=True)
        report["tools"][tool] = info
        # written after every tool, so a run cut short keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.out)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
