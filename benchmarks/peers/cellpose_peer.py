#!/usr/bin/env python3
"""Cellpose 3 peer for the side-by-side nuclei benchmark (issue 15).

Runs inside its own virtual environment (see requirements-cellpose.txt); it
uses only the standard library and that environment's packages and never
imports cellsight.  Nothing is downloaded: the network is built with
``CellposeModel(pretrained_model=False, model_type=None)`` (no weights, no
size model) and later reloaded from the file that ``train_seg`` wrote.

Training follows the package's own from-scratch recipe: ``cellpose.train.
train_seg`` with the command line's training defaults (SGD, learning rate
0.2, momentum 0.9, weight decay 1e-5, batch 8, 224x224 crops, diam_mean 30
so each image is rescaled by its median mask diameter / 30, random
rotate/flip/rescale augmentation, min_train_masks 5), grey images as
channels [0, 0] (two network input channels, the second empty), cellpose's
1/99 percentile normalisation.  The "tune" images are its test set (loss
monitoring only; cellpose has no threshold optimisation).

How the wall-clock budget is honoured.  ``train_seg`` has no time limit and
its learning-rate schedule depends on ``n_epochs`` (10 warm-up epochs, then
constant; for n_epochs > 100 / > 300 the last 50 / 100 epochs anneal), so
training is neither interrupted nor restarted in chunks (a restart would
repeat the warm-up).  Instead:

1. the flows of all training/tune masks are computed once with
   ``dynamics.labels_to_flows`` and handed to ``train_seg`` as precomputed
   flows (its "flows precomputed" path), so no call recomputes them;
2. a calibration call of ``train_seg`` on a throw-away network (n_epochs=1,
   ``nimg_per_epoch`` = 5 batches) measures the seconds per training batch
   (from a torch forward-pre-hook time stamp at each training batch, the
   first, warm-up batch left out) and the per-call overhead (from the time
   stamp of cellpose's own log line that precedes its epoch loop);
3. ``n_epochs`` = what fits into the rest of the budget (at most
   ``--max-epochs``, the command line's default 500), and ONE ``train_seg``
   call on a fresh network trains with the package's normal schedule.

An epoch is one pass over all kept training images (cellpose's default).  On
a 2-core CPU that is long (about 2-4 s per 224x224 training image measured
on a shared 2-core machine, i.e. ~15-25 min for the 408 DSB2018 train
images), so a budget of a few hours
gives only a handful of epochs and cellpose's 10-epoch learning-rate warm-up
is never finished.  ``--nimg-per-epoch N`` (the CLI's ``--nimg_per_epoch``,
documented) makes epochs of N randomly drawn images instead; the summary
records which was used.

The budget counts steps 1-3 together; the summary reports each part and how
far the real time landed from the budget.

Prediction: ``CellposeModel.eval`` per "val" image.  The headline
(``OUT/<name>.tif``) is what a user gets from a custom model without a size
model: ``diameter=None``, i.e. rescale = diam_mean / diam_labels (the mean
training diameter stored in the model).  A second run with each image's true
median mask diameter (cellpose's ``utils.diameters`` of the ground truth;
an oracle, not a fair headline) goes to ``OUT/true_diameter/<name>.tif``
unless ``--no-true-diameter`` is given.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

PROG = "cellpose_peer"


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="split JSON with train/tune/val name lists")
    p.add_argument(
        "--data", required=True, help="folder with images/<name>.tif and labels/<name>.tif"
    )
    p.add_argument(
        "--budget-seconds",
        type=float,
        required=True,
        help="wall-clock budget for training (flows + calibration + train_seg)",
    )
    p.add_argument("--workdir", required=True, help="folder for the model and logs")
    p.add_argument(
        "--out", required=True, help="folder for <name>.tif predictions and summary.json"
    )
    p.add_argument(
        "--extra-train-dirs",
        nargs="*",
        default=[],
        help="more training folders, each with images/*.tif and labels/*.tif of the same stems",
    )
    p.add_argument(
        "--limit-train", type=int, default=None, help="use only the first N train names (testing)"
    )
    p.add_argument(
        "--limit-tune", type=int, default=None, help="use only the first N tune names (testing)"
    )
    p.add_argument(
        "--limit-val", type=int, default=None, help="predict only the first N val names (testing)"
    )
    p.add_argument(
        "--max-epochs", type=int, default=500, help="cap on n_epochs (cellpose CLI default 500)"
    )
    p.add_argument(
        "--learning-rate", type=float, default=0.2, help="cellpose CLI default 0.2 (SGD)"
    )
    p.add_argument("--weight-decay", type=float, default=1e-5, help="cellpose CLI default 1e-5")
    p.add_argument("--batch-size", type=int, default=8, help="cellpose CLI default 8")
    p.add_argument(
        "--nimg-per-epoch",
        type=int,
        default=None,
        help="train_seg nimg_per_epoch (CLI --nimg_per_epoch); default: all kept train images",
    )
    p.add_argument(
        "--no-true-diameter",
        action="store_true",
        help="skip the second prediction run with each image's true median diameter",
    )
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_split(args):
    split_path = Path(args.split)
    if not split_path.is_file():
        die(f"split file not found: {split_path}")
    try:
        split = json.loads(split_path.read_text())
    except ValueError as e:
        die(f"split file is not valid JSON: {split_path} ({e})")
    for key in ("train", "tune", "val"):
        if not isinstance(split.get(key), list):
            die(f"split file {split_path} has no list '{key}'")
    data = Path(args.data)
    for sub in ("images", "labels"):
        if not (data / sub).is_dir():
            die(f"data folder has no {sub}/ subfolder: {data / sub}")
    names = {
        "train": split["train"][: args.limit_train],
        "tune": split["tune"][: args.limit_tune],
        "val": split["val"][: args.limit_val],
    }
    for key, lst in names.items():
        for n in lst:
            for sub in ("images", "labels") if key != "val" else ("images",):
                f = data / sub / f"{n}.tif"
                if not f.is_file():
                    die(f"missing {key} file: {f}")
    extra = []
    for d in args.extra_train_dirs:
        d = Path(d)
        if not (d / "images").is_dir() or not (d / "labels").is_dir():
            die(f"extra train dir needs images/ and labels/: {d}")
        for img in sorted((d / "images").glob("*.tif")):
            lab = d / "labels" / img.name
            if not lab.is_file():
                die(f"missing label for extra train image: {lab}")
            extra.append((img, lab))
    return split_path, names, extra


class _Stamps(logging.Handler):
    """Records when cellpose.train logs the line that precedes its epoch loop."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.loop_start = None

    def emit(self, record):
        if record.getMessage().startswith(">>> saving model to"):
            self.loop_start = time.time()


def main(argv=None):
    args = parse_args(argv)
    split_path, names, extra = load_split(args)
    if args.budget_seconds <= 0:
        die("--budget-seconds must be positive")
    data = Path(args.data)
    workdir = Path(args.workdir)
    out = Path(args.out)
    model_name = "cellpose_scratch"
    if (workdir / "models" / model_name).exists():
        die(f"model already exists (use a fresh --workdir): {workdir / 'models' / model_name}")
    workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.time()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s"
    )
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    import tifffile
    from cellpose import dynamics, models, train, utils
    from cellpose.version import version as cellpose_version

    stamps = _Stamps()
    logging.getLogger("cellpose.train").addHandler(stamps)
    cpu = torch.device("cpu")
    np.random.seed(args.seed)

    # ---------------------------------------------------------------- data
    t0 = time.time()

    def read(path):
        a = tifffile.imread(path)
        if a.ndim != 2:
            die(f"expected a 2D image, got shape {a.shape}: {path}")
        return a

    train_pairs = [
        (data / "images" / f"{n}.tif", data / "labels" / f"{n}.tif") for n in names["train"]
    ] + extra
    tune_pairs = [
        (data / "images" / f"{n}.tif", data / "labels" / f"{n}.tif") for n in names["tune"]
    ]
    X_trn = [read(a) for a, _ in train_pairs]
    L_trn = [read(b).astype(np.int32) for _, b in train_pairs]
    X_tun = [read(a) for a, _ in tune_pairs]
    L_tun = [read(b).astype(np.int32) for _, b in tune_pairs]
    for (a, _), x, y in zip(train_pairs + tune_pairs, X_trn + X_tun, L_trn + L_tun, strict=True):
        if x.shape != y.shape:
            die(f"label shape {y.shape} differs from image shape {x.shape}: {a}")
    data_prep_s = time.time() - t0
    print(
        f"[{PROG}] loaded {len(X_trn)} train, {len(X_tun)} tune images in {data_prep_s:.1f}s",
        flush=True,
    )

    settings = dict(
        channels=[0, 0],
        normalize=True,
        SGD=True,
        learning_rate=args.learning_rate,
        momentum=0.9,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        min_train_masks=5,
        rescale=True,
        bsize=224,
        save_every=100,
    )
    diam_mean = 30.0

    def new_model():
        return models.CellposeModel(
            gpu=False,
            device=cpu,
            pretrained_model=False,
            model_type=None,
            diam_mean=diam_mean,
            nchan=2,
        )

    # ---------------------------------------------------------------- budgeted training
    t_train0 = time.time()
    F_trn = dynamics.labels_to_flows(L_trn, device=cpu)
    F_tun = dynamics.labels_to_flows(L_tun, device=cpu) if L_tun else None
    flows_s = time.time() - t_train0
    del L_trn
    nmasks = [len(np.unique(f[0])) - int((f[0] == 0).any()) for f in F_trn]
    n_kept = sum(m >= settings["min_train_masks"] for m in nmasks)
    if n_kept == 0:
        die("no training image has at least 5 masks")
    print(
        f"[{PROG}] flows for {len(F_trn)}+{len(L_tun)} images in {flows_s:.1f}s; "
        f"{n_kept} train images kept (>= 5 masks)",
        flush=True,
    )

    # calibration on a throw-away network
    torch.manual_seed(args.seed)
    cal = new_model()
    bs = args.batch_size
    k_cal = min(n_kept, 5 * bs)
    (workdir / "calibration").mkdir(exist_ok=True)
    fwd_train, fwd_eval = [], []

    def _stamp(module, inputs):
        (fwd_train if module.training else fwd_eval).append(time.time())

    hook = cal.net.register_forward_pre_hook(_stamp)
    t0 = time.time()
    stamps.loop_start = None
    train.train_seg(
        cal.net,
        train_data=X_trn,
        train_labels=F_trn,
        test_data=X_tun or None,
        test_labels=F_tun,
        n_epochs=1,
        nimg_per_epoch=k_cal,
        nimg_test_per_epoch=min(len(X_tun), bs) or None,
        save_path=str(workdir / "calibration"),
        model_name="calibration",
        **settings,
    )
    t1 = time.time()
    hook.remove()
    calib_s = t1 - t0
    loop_start = stamps.loop_start or t0
    overhead_s = loop_start - t0
    end_train = fwd_eval[0] if fwd_eval else t1
    if len(fwd_train) >= 2:  # leave the first (warm-up) batch out
        sec_per_batch = (end_train - fwd_train[1]) / (len(fwd_train) - 1)
    else:
        sec_per_batch = (end_train - loop_start) / max(1, len(fwd_train))
    sec_per_img = sec_per_batch / bs
    test_s = (
        (t1 - fwd_eval[0]) / min(len(X_tun), bs) if fwd_eval else 0.0
    )  # per test image (+ save)
    del cal
    nimg_epoch = n_kept if args.nimg_per_epoch is None else args.nimg_per_epoch
    n_batches = math.ceil(nimg_epoch / bs)
    # an epoch = its training batches; train_seg adds a test pass over all tune images
    # at epochs 0, 5, 10, 20, 30, ...: the largest n_epochs whose estimate fits is taken
    epoch_est = n_batches * sec_per_batch
    test_pass = test_s * len(X_tun)

    def est(n):
        return n * epoch_est + sum(e == 5 or e % 10 == 0 for e in range(n)) * test_pass

    remaining = args.budget_seconds - (time.time() - t_train0) - overhead_s
    n_epochs = 1
    while n_epochs < args.max_epochs and est(n_epochs + 1) <= remaining:
        n_epochs += 1
    print(
        f"[{PROG}] calibration: {sec_per_batch:.2f}s per batch of {bs}, "
        f"overhead {overhead_s:.1f}s, "
        f"~{epoch_est:.1f}s per epoch of {nimg_epoch} images -> n_epochs={n_epochs}",
        flush=True,
    )

    torch.manual_seed(args.seed)
    model = new_model()
    t0 = time.time()
    model_path, train_losses, test_losses = train.train_seg(
        model.net,
        train_data=X_trn,
        train_labels=F_trn,
        test_data=X_tun or None,
        test_labels=F_tun,
        n_epochs=n_epochs,
        nimg_per_epoch=args.nimg_per_epoch,
        save_path=str(workdir),
        model_name=model_name,
        **settings,
    )
    main_s = time.time() - t0
    train_s = time.time() - t_train0
    diam_labels = float(model.net.diam_labels.item())
    print(
        f"[{PROG}] trained {n_epochs} epochs in {main_s:.1f}s (total with flows+calibration "
        f"{train_s:.1f}s of {args.budget_seconds:.0f}s budget)",
        flush=True,
    )
    del F_trn, F_tun, X_trn

    # ---------------------------------------------------------------- predict
    model = models.CellposeModel(gpu=False, device=cpu, pretrained_model=str(model_path), nchan=2)
    eval_kw = dict(
        channels=[0, 0],
        flow_threshold=0.4,
        cellprob_threshold=0.0,
        min_size=15,
        resample=True,
        niter=None,
        augment=False,
        tile_overlap=0.1,
        bsize=224,
        batch_size=8,
        normalize=True,
    )
    modes = [("diam_labels", out)]
    if not args.no_true_diameter:
        modes.append(("true_median_diameter", out / "true_diameter"))
        (out / "true_diameter").mkdir(exist_ok=True)

    def run_eval(img, diameter):
        masks = model.eval(img, diameter=diameter, **eval_kw)[0]
        return masks

    per_image = []
    warmup_s = None
    for i, n in enumerate(names["val"]):
        img = read(data / "images" / f"{n}.tif")
        row = {"name": n, "shape": list(img.shape), "megapixels": img.shape[0] * img.shape[1] / 1e6}
        if i == 0:  # untimed warm-up, reported apart
            t0 = time.time()
            run_eval(img, None)
            warmup_s = time.time() - t0
        for mode, folder in modes:
            if mode == "diam_labels":
                diameter = None
            else:
                lab_path = data / "labels" / f"{n}.tif"
                if not lab_path.is_file():
                    die(
                        f"missing val label for the true-diameter run "
                        f"(or pass --no-true-diameter): {lab_path}"
                    )
                diameter = float(utils.diameters(read(lab_path).astype(np.int32))[0])
                row["true_median_diameter"] = diameter
            t0 = time.time()
            masks = run_eval(img, diameter if diameter else None)
            dt = time.time() - t0
            masks = np.asarray(masks)
            masks = masks.astype(np.uint16 if masks.max() < 2**16 else np.uint32)
            tifffile.imwrite(folder / f"{n}.tif", masks)
            row[f"seconds_{mode}"] = round(dt, 4)
            row[f"n_objects_{mode}"] = int(len(np.unique(masks)) - (masks.min() == 0))
        per_image.append(row)
    tot_mp = sum(r["megapixels"] for r in per_image)
    pred = {}
    for mode, _ in modes:
        s = sum(r[f"seconds_{mode}"] for r in per_image)
        pred[mode] = {
            "seconds_total": round(s, 3),
            "seconds_per_megapixel": round(s / tot_mp, 4) if tot_mp else None,
        }

    versions = {
        "python": platform.python_version(),
        "cellpose": cellpose_version,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "tifffile": tifffile.__version__,
    }
    summary = {
        "peer": "cellpose",
        "headline": "predictions OUT/<name>.tif: eval(diameter=None) = rescale by "
        "diam_mean/diam_labels "
        "(no size model); OUT/true_diameter/<name>.tif uses each image's true median "
        "diameter (oracle, secondary)",
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": 1,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        },
        "command": [sys.executable] + sys.argv,
        "args": vars(args),
        "split": {
            "path": str(split_path.resolve()),
            "sha256": sha256(split_path),
            "n_train": len(names["train"]),
            "n_extra_train": len(extra),
            "n_train_kept_min5masks": int(n_kept),
            "n_tune": len(names["tune"]),
            "n_val": len(names["val"]),
        },
        "recipe": {
            "source": "cellpose.train.train_seg from scratch with the cellpose CLI "
            "training defaults",
            "model": {
                "pretrained_model": False,
                "model_type": None,
                "diam_mean": diam_mean,
                "nchan": 2,
                "backbone": "default (CPnet, nbase 32-64-128-256)",
            },
            "train_seg": {
                **settings,
                "n_epochs": n_epochs,
                "nimg_per_epoch": args.nimg_per_epoch,
                "images_per_epoch": nimg_epoch,
                "scale_range": 0.5,
                "normalize_default": "percentiles 1 / 99 per image",
                "test_data": "tune images (loss monitoring only)",
                "lr_schedule": "cellpose's own for this n_epochs: linear warm-up over 10 "
                "epochs, then constant (annealing only if n_epochs > 100)",
            },
            "diam_labels_after_training": diam_labels,
            "eval": {**eval_kw, "diameter": "None (headline) / true median per image (oracle)"},
            "budget_method": "flows precomputed once; calibration "
            "train_seg(n_epochs=1, 5 batches) on a throw-away "
            "net measures seconds per training batch and per test image; n_epochs = the "
            "most epochs (+ train_seg's test passes) that fit the remaining budget; one "
            "train_seg call on a fresh net",
        },
        "timing": {
            "data_prep_seconds": round(data_prep_s, 2),
            "train_budget_seconds": args.budget_seconds,
            "train_wall_seconds": round(train_s, 2),
            "train_flows_seconds": round(flows_s, 2),
            "train_calibration_seconds": round(calib_s, 2),
            "calibration_seconds_per_training_batch": round(sec_per_batch, 4),
            "calibration_seconds_per_training_image": round(sec_per_img, 4),
            "calibration_seconds_per_test_image": round(test_s, 4),
            "calibration_call_overhead_seconds": round(overhead_s, 2),
            "estimated_epoch_seconds": round(epoch_est, 2),
            "estimated_test_pass_seconds": round(test_pass, 2),
            "estimated_train_seg_seconds": round(overhead_s + est(n_epochs), 2),
            "train_seg_seconds": round(main_s, 2),
            "train_epochs_done": n_epochs,
            "seconds_per_epoch": round(main_s / n_epochs, 3),
            "train_over_budget_seconds": round(train_s - args.budget_seconds, 2),
            "threshold_optimisation_seconds": None,
            "predict_warmup_seconds": None if warmup_s is None else round(warmup_s, 3),
            "predict": pred,
            "predict_megapixels_total": tot_mp,
            "predict_timing_note": "per image: CellposeModel.eval (normalisation, network, "
            "flow dynamics, masks), no file I/O; a warm-up eval of the first "
            "image ran before",
            "script_wall_seconds": round(time.time() - t_start, 2),
        },
        "train_losses": [float(v) for v in train_losses],
        "test_losses": {str(i): float(v) for i, v in enumerate(test_losses) if v},
        "model_path": str(Path(model_path).resolve()),
        "per_image": per_image,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"[{PROG}] wrote {len(per_image)} predictions and summary.json to {out}", flush=True)


if __name__ == "__main__":
    main()
