"""Fine-tuning on one or two corrected frames must not make the model worse (issue 15, item 7).

A biologist corrects ONE frame (or two slices) of their sequence and fine-tunes the
built-in ``nuclei`` model with the defaults. With the previous defaults that could make
the model worse on the rest of the sequence while the held-out check (a stripe of the
same frame) accepted it. Each case here is run with the previous defaults
(``--old``: no pull to the starting weights, held-out check only) and with the current
``FineTuneConfig()`` defaults, and scored on frames of the same data that were never
corrected (full ground truth there):

* ``bbbc050_slices`` (TUNING case: the pull strength and the check's limits were
  chosen on it and on ``bbbc050_stack``): BBBC050 embryo t501, a (51, 114, 112)
  stack; two slices (z 27 and 29, most nuclei) corrected; test: every annotated slice
  of t001 ... t401 (as benchmarks/finetune.py). Model's own scale.
* ``bbbc050_stack`` (TUNING case): the whole t501 stack corrected; same test.
* ``gowt1_frame`` (report only): GOWT1-01, frame t021 corrected (complete SEG);
  test: t031, t033, t039, the other fully annotated frames. Diameter measured by the
  model on t021, as the dock does.
* ``simplus_frame`` (became a TUNING case): SIM+-01, frame 30 corrected; test: frames
  10, 20, 40, 50, 60 (complete SEG in every frame; the built-in model trained on SIM+'s
  even frames, these included). Its first run (fine-tuning made it worse, -0.077, and the
  check with a keep limit of 0.9 let it through at 0.954) set the keep limit to 0.97,
  before the HeLa case's result was looked at.
* ``hela_frame`` (report only): CTC Fluo-N2DL-HeLa/02 subset (timelapse_unlabelled),
  frame 0 corrected by us; test frames 6, 12, 18 corrected by us
  (benchmarks/data/hela_corrected.npz; how, in benchmarks/data/HELA_CORRECTIONS.md).

The whole sequence (or stack) is given to ``fine_tune`` with the corrected frames
marked reviewed, as the Fine-tune dock does; the check may look at any other frame
(never at ground truth). "active" is the model the user ends up with: the new one when
the check accepts it, else the old one.

Run from the repository root (one run, about 20-30 minutes on 2 CPU cores):

    nice -n 5 .venv/bin/python benchmarks/finetune_few.py \\
        --out benchmarks/results/finetune_few.json

Tuning runs (only the two BBBC050 cases, several pull strengths):

    .venv/bin/python benchmarks/finetune_few.py --cases bbbc050_slices,bbbc050_stack \\
        --anchors 0,10,30,100 --out /tmp/tune.json
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cellsight.config.finetune import FineTuneConfig  # noqa: E402
from cellsight.config.instances import InstancePredictConfig  # noqa: E402
from cellsight.core.curation.finetune import fine_tune  # noqa: E402
from cellsight.core.evaluation.metrics import MatchResult, match_instances  # noqa: E402
from cellsight.core.segmentation.instance_model import (  # noqa: E402
    estimate_diameter,
    load_builtin,
    segment_instances,
)
from cellsight.io.tiff import read_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HELA_GT = REPO / "benchmarks" / "data" / "hela_corrected.npz"
OLD = {"anchor": 0.0, "check_frames": 0}  # the defaults before this change


def _read(path: Path) -> np.ndarray:
    return read_image(path).data


def bbbc050(slices: bool) -> dict:
    folder = DATA / "nuclei3d" / "bbbc050"
    image = _read(folder / "images" / "Emb1_t501.tif").astype(np.float32)
    labels = _read(folder / "labels" / "Emb1_t501.tif").astype(np.int32)
    tests = []
    for name in ("t001", "t101", "t201", "t301", "t401"):
        img = _read(folder / "images" / f"Emb1_{name}.tif").astype(np.float32)
        lab = _read(folder / "labels" / f"Emb1_{name}.tif").astype(np.int32)
        tests += [(img[z], lab[z]) for z in range(len(lab)) if lab[z].any()]
    reviewed = [27, 29] if slices else list(range(len(labels)))
    shown = np.zeros_like(labels)
    shown[reviewed] = labels[reviewed]
    return {"movie": image, "labels": shown, "reviewed": reviewed, "tests": tests,
            "diameter": 0.0}


def ctc(name: str, corrected: int, test: list[int]) -> dict:
    folder = DATA / "tracking" / name
    frames = sorted((folder / "01").glob("t*.tif"))
    movie = np.stack([_read(p) for p in frames]).astype(np.float32)
    labels = np.zeros(movie.shape, np.int32)
    seg = folder / "01_GT" / "SEG"
    labels[corrected] = _read(seg / f"man_seg{corrected:03d}.tif")
    tests = [(movie[t], _read(seg / f"man_seg{t:03d}.tif").astype(np.int32)) for t in test]
    return {"movie": movie, "labels": labels, "reviewed": [corrected], "tests": tests,
            "diameter": None}


def hela() -> dict:
    movie = _read(DATA / "timelapse_unlabelled" / "Fluo_Hela_02_img.tif").astype(np.float32)
    gt = np.load(HELA_GT)
    labels = np.zeros(movie.shape, np.int32)
    labels[0] = gt["t0"]
    tests = [(movie[t], gt[f"t{t}"].astype(np.int32)) for t in (6, 12, 18)]
    return {"movie": movie, "labels": labels, "reviewed": [0], "tests": tests,
            "diameter": None}


CASES = {
    "bbbc050_slices": lambda: bbbc050(True),
    "bbbc050_stack": lambda: bbbc050(False),
    "gowt1_frame": lambda: ctc("Fluo-N2DH-GOWT1", 21, [31, 33, 39]),
    "simplus_frame": lambda: ctc("Fluo-N2DH-SIM+", 30, [10, 20, 40, 50, 60]),
    "hela_frame": hela,
}
TUNING = ("bbbc050_slices", "bbbc050_stack", "simplus_frame")


def score(model, tests, diameter: float) -> dict:
    config = InstancePredictConfig(mode="2d", diameter=diameter, device="cpu")
    total = MatchResult(0, 0, 0, ())
    for image, labels in tests:
        total = total + match_instances(labels, segment_instances(model, image, config))
    return {"ap50": round(total.ap, 4), "tp": total.tp, "fp": total.fp, "fn": total.fn}


def run_case(key: str, configs: dict[str, dict], base) -> dict:
    case = CASES[key]()
    if case["diameter"] is None:  # measured on the corrected frame, as the dock does
        frame = case["movie"][case["reviewed"][0]]
        config = InstancePredictConfig(mode="2d", device="cpu")
        case["diameter"] = round(float(estimate_diameter(base, frame, config)), 1)
    d = case["diameter"]
    out = {"role": "tuning" if key in TUNING else "report", "diameter": d,
           "reviewed": case["reviewed"], "test_frames": len(case["tests"])}
    out["before"] = score(base, case["tests"], d)
    print(key, "before", json.dumps(out["before"]), flush=True)
    for name, values in configs.items():
        began = time.perf_counter()
        result = fine_tune(case["movie"], case["labels"], FineTuneConfig(**values),
                           base=base, reviewed=[case["reviewed"]], diameter=d)
        wall = round(time.perf_counter() - began, 1)
        after = score(result.model, case["tests"], d)
        active = after if result.kept == "new" else out["before"]
        c = result.consistency
        out[name] = {
            "config": values, "after": after, "kept": result.kept,
            "gain_new_model": round(after["ap50"] - out["before"]["ap50"], 4),
            "gain_active": round(active["ap50"] - out["before"]["ap50"], 4),
            "held_out": result.held_out, "held_out_before": round(result.before_ap, 4),
            "held_out_after": round(result.after_ap, 4),
            "consistency": None if c is None else {
                "frames": c.frames, "confident": c.confident, "kept": c.kept,
                "added": c.added, "old_objects": c.old_objects, "new_objects": c.new_objects,
                "kept_share": round(c.kept_share, 3), "added_share": round(c.added_share, 3)},
            "steps_done": result.steps_done, "fine_tune_wall_s": wall,
            "message": result.message,
        }
        print(key, name, json.dumps({k: out[name][k] for k in (
            "after", "kept", "gain_new_model", "gain_active", "consistency",
            "fine_tune_wall_s")}), flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--anchors", default="",
                        help="Tuning: comma-separated pull strengths, each run with the "
                        "other defaults (replaces the old/new pair).")
    parser.add_argument("--steps", type=int, default=0, help="Quick try only.")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                        "finetune_few.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    quick = {"steps": args.steps} if args.steps else {}
    if args.anchors:
        configs = {f"anchor_{a}": {"anchor": float(a), **quick}
                   for a in args.anchors.split(",")}
    else:
        configs = {"old_defaults": OLD | quick, "new_defaults": dict(quick)}
    base = load_builtin("nuclei")
    report = {"threads": 2, "defaults": FineTuneConfig().model_dump(mode="json"),
              "load_start": [round(v, 2) for v in os.getloadavg()], "cases": {}}
    for key in args.cases.split(","):
        report["cases"][key] = run_case(key, configs, base)
        tmp = args.out.with_suffix(".tmp")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.out)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
