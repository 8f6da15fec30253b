#!/usr/bin/env python3
"""StarDist 2D peer for the side-by-side nuclei benchmark (issue 15).

Runs inside its own virtual environment (see requirements-stardist.txt); it
uses only the standard library and that environment's packages and never
imports cellsight.

What it does, following the StarDist 2D example recipe (``2_training.ipynb``)
for DSB2018-like grey images:

1. loads the split's "train" images (plus any ``--extra-train-dirs``) and the
   "tune" images, normalises each image to its 1 / 99.8 percentiles and fills
   label holes;
2. trains ``StarDist2D`` from scratch: ``Config2D(n_rays=32, grid=(2,2))``,
   256x256 patches, batch 4, learning rate 3e-4, the package's
   ReduceLROnPlateau and best-weights checkpointing, augmentation = random
   rot90/flips + intensity scale U(0.6, 2) and shift U(-0.2, 0.2) + Gaussian
   noise with sigma 0.02*U(0, 1).  The "tune" images are the validation data.
   ``train_epochs`` x ``train_steps_per_epoch`` is the recipe's 400 x 100,
   and a Keras callback stops training once ``--budget-seconds`` of wall time
   have passed since ``model.train`` was called (whichever comes first);
   the package then reloads its best (lowest validation loss) weights;
3. runs ``model.optimize_thresholds`` on the "tune" images (timed apart);
4. predicts every "val" image with ``predict_instances`` and the optimised
   thresholds, writes ``OUT/<name>.tif`` (uint16 labels, uint32 if needed)
   and ``OUT/summary.json``.

Threads: TensorFlow intra-op ``--threads`` (default 2), inter-op 1,
OMP_WAIT_POLICY=PASSIVE.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

PROG = "stardist_peer"


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
        help="wall-clock budget for training (model.train); threshold optimisation is extra",
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
        "--epochs",
        type=int,
        default=400,
        help="train_epochs (recipe: 400); the budget normally stops earlier",
    )
    p.add_argument(
        "--steps-per-epoch", type=int, default=100, help="train_steps_per_epoch (recipe: 100)"
    )
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
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


def main(argv=None):
    args = parse_args(argv)
    split_path, names, extra = load_split(args)
    if args.budget_seconds <= 0:
        die("--budget-seconds must be positive")
    data = Path(args.data)
    workdir = Path(args.workdir)
    out = Path(args.out)
    model_name = "stardist2d_scratch"
    if (workdir / model_name).exists():
        die(f"model folder already exists (use a fresh --workdir): {workdir / model_name}")
    workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)

    t_start = time.time()
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    import csbdeep
    import stardist
    import tifffile
    from csbdeep.utils import normalize
    from csbdeep.utils.tf import keras_import
    from stardist import calculate_extents, fill_label_holes
    from stardist.models import Config2D, StarDist2D

    Callback = keras_import("callbacks", "Callback")

    np.random.seed(args.seed)
    tf.random.set_seed(args.seed)

    # ---------------------------------------------------------------- data
    t0 = time.time()

    def read_pair(img_path, lab_path):
        x = tifffile.imread(img_path)
        y = tifffile.imread(lab_path)
        if x.ndim != 2:
            die(f"expected a 2D grey image, got shape {x.shape}: {img_path}")
        if y.shape != x.shape:
            die(f"label shape {y.shape} differs from image shape {x.shape}: {lab_path}")
        return (normalize(x, 1, 99.8, axis=(0, 1)).astype(np.float32), fill_label_holes(y))

    train_pairs = [
        (data / "images" / f"{n}.tif", data / "labels" / f"{n}.tif") for n in names["train"]
    ] + extra
    X_trn, Y_trn = zip(*[read_pair(a, b) for a, b in train_pairs], strict=True)
    X_tun, Y_tun = zip(
        *[
            read_pair(data / "images" / f"{n}.tif", data / "labels" / f"{n}.tif")
            for n in names["tune"]
        ],
        strict=True,
    )
    X_trn, Y_trn, X_tun, Y_tun = list(X_trn), list(Y_trn), list(X_tun), list(Y_tun)
    patch = (256, 256)
    for (a, _), x in zip(train_pairs, X_trn, strict=True):
        if x.shape[0] < patch[0] or x.shape[1] < patch[1]:
            die(f"training image smaller than the 256x256 patch: {a} {x.shape}")
    data_prep_s = time.time() - t0
    print(
        f"[{PROG}] loaded {len(X_trn)} train, {len(X_tun)} tune images in {data_prep_s:.1f}s",
        flush=True,
    )

    # ---------------------------------------------------------------- model
    conf = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=1,
        use_gpu=False,
        train_patch_size=patch,
        train_epochs=args.epochs,
        train_steps_per_epoch=args.steps_per_epoch,
        train_tensorboard=False,
    )
    model = StarDist2D(conf, name=model_name, basedir=str(workdir))
    median_size = [float(v) for v in calculate_extents(Y_trn, np.median)]
    fov = [float(v) for v in model._axes_tile_overlap("YX")]

    def augmenter(x, y):
        # random element of the dihedral group (rot90 + flips) on image and labels
        k = np.random.randint(4)
        x, y = np.rot90(x, k), np.rot90(y, k)
        for ax in (0, 1):
            if np.random.rand() < 0.5:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x = x * np.random.uniform(0.6, 2.0) + np.random.uniform(-0.2, 0.2)
        sig = 0.02 * np.random.uniform(0, 1)
        x = x + sig * np.random.normal(0, 1, x.shape)
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

    class BudgetStop(Callback):
        """Stop fit() after the first batch that ends past the wall-clock budget."""

        def __init__(self, t_begin, seconds):
            super().__init__()
            self.t_begin, self.seconds = t_begin, seconds
            self.steps = 0
            self.epochs_ended = 0
            self.stopped_by_budget = False
            self.stop_time = None
            self.history = []

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if not self.stopped_by_budget and time.time() - self.t_begin >= self.seconds:
                self.stopped_by_budget = True
                self.stop_time = time.time() - self.t_begin
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.epochs_ended += 1
            row = {
                "epoch": epoch + 1,
                "steps_total": self.steps,
                "elapsed_s": round(time.time() - self.t_begin, 2),
            }
            row.update({k: float(v) for k, v in (logs or {}).items()})
            self.history.append(row)

    model.prepare_for_training()
    t_train0 = time.time()
    budget_cb = BudgetStop(t_train0, args.budget_seconds)
    model.callbacks.append(budget_cb)
    print(
        f"[{PROG}] training for at most {args.budget_seconds:.0f}s "
        f"({args.epochs} epochs x {args.steps_per_epoch} steps cap)",
        flush=True,
    )
    model.train(
        X_trn,
        Y_trn,
        validation_data=(X_tun, Y_tun),
        augmenter=augmenter,
        seed=args.seed,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
    )
    train_s = time.time() - t_train0
    print(f"[{PROG}] trained {budget_cb.steps} steps in {train_s:.1f}s", flush=True)

    # ---------------------------------------------------------------- thresholds
    t0 = time.time()
    thresholds = model.optimize_thresholds(X_tun, Y_tun)
    thresh_s = time.time() - t0
    print(f"[{PROG}] optimised thresholds {thresholds} in {thresh_s:.1f}s", flush=True)

    # ---------------------------------------------------------------- predict
    def predict(img):
        x = normalize(img, 1, 99.8, axis=(0, 1))
        lab, _ = model.predict_instances(
            x, n_tiles=model._guess_n_tiles(x), show_tile_progress=False
        )
        return lab

    per_image = []
    warmup_s = None
    for i, n in enumerate(names["val"]):
        img = tifffile.imread(data / "images" / f"{n}.tif")
        if img.ndim != 2:
            die(f"expected a 2D grey image, got shape {img.shape}: {data / 'images' / f'{n}.tif'}")
        if i == 0:  # untimed warm-up (graph tracing), reported apart
            t0 = time.time()
            predict(img)
            warmup_s = time.time() - t0
        t0 = time.time()
        lab = predict(img)
        dt = time.time() - t0
        lab = lab.astype(np.uint16 if lab.max() < 2**16 else np.uint32)
        tifffile.imwrite(out / f"{n}.tif", lab)
        mp = img.shape[0] * img.shape[1] / 1e6
        per_image.append(
            {
                "name": n,
                "shape": list(img.shape),
                "megapixels": mp,
                "seconds": round(dt, 4),
                "n_objects": int(len(np.unique(lab)) - (lab.min() == 0)),
            }
        )
    pred_s = sum(r["seconds"] for r in per_image)
    tot_mp = sum(r["megapixels"] for r in per_image)

    versions = {
        "python": platform.python_version(),
        "stardist": stardist.__version__,
        "csbdeep": csbdeep.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "tifffile": tifffile.__version__,
    }
    try:
        import keras

        versions["keras"] = keras.__version__
    except Exception:
        pass
    summary = {
        "peer": "stardist",
        "headline": "predictions OUT/<name>.tif: predict_instances with the thresholds "
        "optimised on 'tune'",
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "tf_intra_op_threads": args.threads,
            "tf_inter_op_threads": 1,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        },
        "command": [sys.executable] + sys.argv,
        "args": vars(args),
        "split": {
            "path": str(split_path.resolve()),
            "sha256": sha256(split_path),
            "n_train": len(names["train"]),
            "n_extra_train": len(extra),
            "n_tune": len(names["tune"]),
            "n_val": len(names["val"]),
        },
        "recipe": {
            "source": "StarDist examples/2D/2_training.ipynb (from scratch)",
            "normalisation": "per image, csbdeep normalize percentiles 1 / 99.8, axis=(0,1)",
            "labels": "stardist.fill_label_holes",
            "augmentation": "rot90(k~U{0..3}) + flip each axis p=0.5; x*U(0.6,2)+U(-0.2,0.2); "
            "+ N(0, (0.02*U(0,1))^2)",
            "validation_data": "tune images (also used for optimize_thresholds)",
            "config": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(model.config).items()
            },
            "median_object_extent_train": median_size,
            "network_field_of_view": fov,
        },
        "timing": {
            "data_prep_seconds": round(data_prep_s, 2),
            "train_budget_seconds": args.budget_seconds,
            "train_wall_seconds": round(train_s, 2),
            "train_stopped_by_budget": budget_cb.stopped_by_budget,
            "train_budget_hit_at_seconds": budget_cb.stop_time,
            "train_steps_done": budget_cb.steps,
            "train_epochs_ended": budget_cb.epochs_ended,
            "train_epochs_note": "an epoch cut by the budget still ends (validation, LR schedule, "
            "checkpoint) and is counted in train_epochs_ended",
            "seconds_per_step": round(train_s / max(1, budget_cb.steps), 4),
            "threshold_optimisation_seconds": round(thresh_s, 2),
            "predict_warmup_seconds": None if warmup_s is None else round(warmup_s, 3),
            "predict_seconds_total": round(pred_s, 3),
            "predict_megapixels_total": tot_mp,
            "predict_seconds_per_megapixel": round(pred_s / tot_mp, 4) if tot_mp else None,
            "predict_timing_note": "per image: normalisation + predict_instances (network + NMS), "
            "no file I/O; a warm-up prediction of the first image ran before",
            "script_wall_seconds": round(time.time() - t_start, 2),
        },
        "thresholds": thresholds,
        "train_history": budget_cb.history,
        "model_dir": str((workdir / model_name).resolve()),
        "per_image": per_image,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"[{PROG}] wrote {len(per_image)} predictions and summary.json to {out}", flush=True)


if __name__ == "__main__":
    main()
