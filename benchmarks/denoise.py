"""Noise2Void denoising: cellsight vs CAREamics N2V, side by side on every W2S pair.

Data: ../shared/data/denoise/w2s, 24 real widefield images (8 fields x 3 channels,
512x512 uint8). Each tool trains on the noisy image ALONE (no clean data), then
denoises it; the result is scored against the 400-shot average in ``clean/`` with
PSNR and SSIM, both with ``data_range=255``.

Same budget for both tools: the same number of gradient steps, patch size and batch
size, N2V variant (not N2V2), CPU, the same number of torch threads, data loading in
the main process (CAREamics ``num_workers=0``). Everything else is each tool's own
default (cellsight: 2-level U-Net with 16 base channels, no normalisation layers;
CAREamics: 2-level U-Net with 32 base channels and batch norm, validation and
checkpointing after every epoch). Wall time covers model set-up, training and
prediction of the whole image (imports excluded).

CAREamics is installed by hand (docs/benchmarks.md gives the lines: its pins do not
resolve with torch 2.13). Its torchvision import needs the C++ ops of a torchvision
build matching torch; the only torchvision for torch 2.13 on PyPI is a CUDA build
whose ops cannot load against the CPU torch, so the two op schemas torchvision
registers fake kernels for are declared before the import (CAREamics' N2V never calls them).

Run from the repository root (one run, ~35 minutes on 2 shared CPU cores):

    nice -n 5 .venv/bin/python benchmarks/denoise.py --steps 150 \
        --out benchmarks/results/denoise.json
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.metrics import peak_signal_noise_ratio, structural_similarity  # noqa: E402

from cellsight.config.n2v import DenoisePredictConfig, N2VConfig  # noqa: E402
from cellsight.core.denoise import denoise, train_n2v  # noqa: E402
from cellsight.io.tiff import read_image, save_json  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "denoise" / "w2s"


def scores(clean: np.ndarray, image: np.ndarray) -> dict:
    clean = clean.astype(np.float64)
    image = np.asarray(image, np.float64)
    return {
        "psnr": round(float(peak_signal_noise_ratio(clean, image, data_range=255)), 3),
        "ssim": round(float(structural_similarity(clean, image, data_range=255)), 4),
    }


def run_cellsight(noisy, args) -> tuple[np.ndarray, float]:
    config = N2VConfig(steps=args.steps, patch_size=args.patch, batch_size=args.batch,
                       variant="n2v", seed=args.seed, device="cpu")
    start = time.perf_counter()
    model = train_n2v(noisy, config)
    out = denoise(model, noisy, DenoisePredictConfig(device="cpu"))
    return out, time.perf_counter() - start


_TORCHVISION_OPS = []  # keeps the op library registered for the whole run


def import_careamics():
    lib = torch.library.Library("torchvision", "DEF")  # see the module docstring
    _TORCHVISION_OPS.append(lib)
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import careamics
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    return careamics.__version__, CAREamist, create_advanced_n2v_config


def run_careamics(noisy, args, careamist_cls, make_config) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    config = make_config(
        experiment_name="w2s", data_type="array", axes="YX",
        patch_size=[args.patch, args.patch], batch_size=args.batch,
        num_epochs=1_000_000, trainer_params={"max_steps": args.steps},
        num_workers=0, use_n2v2=False, seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as work:
        care = careamist_cls(config, work_dir=work, enable_progress_bar=False)
        care.train(train_data=noisy.astype(np.float32))
        pred = care.predict(noisy.astype(np.float32), data_type="array", axes="YX")
        steps_done = care.trainer.global_step
    if steps_done != args.steps:
        raise RuntimeError(f"CAREamics ran {steps_done} steps, not {args.steps}.")
    pred = pred[0] if isinstance(pred, tuple) else pred
    out = np.squeeze(np.asarray(pred[0] if isinstance(pred, list) else pred))
    return out, time.perf_counter() - start


def one_image(name, args, care) -> dict:
    noisy = read_image(DATA / "noisy" / name).data
    clean = read_image(DATA / "clean" / name).data
    row = {"image": name, "noisy": scores(clean, noisy)}
    out, seconds = run_cellsight(noisy, args)
    row["cellsight"] = {**scores(clean, out), "seconds": round(seconds, 1)}
    out, seconds = run_careamics(noisy, args, *care)
    row["careamics"] = {**scores(clean, out), "seconds": round(seconds, 1)}
    return row


def summary(rows: list[dict]) -> dict:
    def mean(tool, key):
        return round(float(np.mean([r[tool][key] for r in rows])), 3)

    out = {t: {k: mean(t, k) for k in ("psnr", "ssim")} for t in ("noisy", "cellsight",
                                                                   "careamics")}
    for tool in ("cellsight", "careamics"):
        out[tool]["seconds_total"] = round(sum(r[tool]["seconds"] for r in rows), 1)
        out[tool]["gain_db"] = round(out[tool]["psnr"] - out["noisy"]["psnr"], 3)
    out["cellsight_psnr_wins"] = sum(r["cellsight"]["psnr"] >= r["careamics"]["psnr"]
                                     for r in rows)
    return out


def markdown(rows: list[dict], total: dict) -> str:
    lines = ["| image | noisy PSNR / SSIM | cellsight PSNR / SSIM / s "
             "| CAREamics PSNR / SSIM / s |", "|---|---|---|---|"]
    for r in rows:
        n, c, k = r["noisy"], r["cellsight"], r["careamics"]
        lines.append(f"| {r['image']} | {n['psnr']:.2f} / {n['ssim']:.3f} | "
                     f"{c['psnr']:.2f} / {c['ssim']:.3f} / {c['seconds']:.1f} | "
                     f"{k['psnr']:.2f} / {k['ssim']:.3f} / {k['seconds']:.1f} |")
    n, c, k = total["noisy"], total["cellsight"], total["careamics"]
    lines.append(f"| **mean** | {n['psnr']:.2f} / {n['ssim']:.3f} | "
                 f"**{c['psnr']:.2f}** / {c['ssim']:.3f} / {c['seconds_total']:.0f} total | "
                 f"{k['psnr']:.2f} / {k['ssim']:.3f} / {k['seconds_total']:.0f} total |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both tools")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images")
    parser.add_argument("--out", default="benchmarks/results/denoise.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    version, *care = import_careamics()
    names = sorted(p.name for p in (DATA / "noisy").glob("*.tif"))
    names = names[: args.limit] if args.limit else names
    rows = []
    for name in names:
        rows.append(one_image(name, args, care))
        r = rows[-1]
        print(f"{name}: noisy {r['noisy']['psnr']:.2f}  cellsight {r['cellsight']['psnr']:.2f} "
              f"({r['cellsight']['seconds']:.0f}s)  careamics {r['careamics']['psnr']:.2f} "
              f"({r['careamics']['seconds']:.0f}s)", flush=True)
    total = summary(rows)
    settings = {k: getattr(args, k) for k in ("steps", "patch", "batch", "threads", "seed")}
    result = {"settings": settings, "careamics_version": version,
              "torch": torch.__version__, "summary": total, "images": rows}
    save_json(args.out, result)
    print(json.dumps(total, indent=2))
    print(markdown(rows, total))


if __name__ == "__main__":
    main()
