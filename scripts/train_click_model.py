"""Train the built-in ``clicks`` model (src/cellsight/models/clicks): click -> object mask.

Data (all from ../shared/data, instance masks; the held-out parts are never read here):

* DSB2018 stage-1 fluorescence nuclei: the ``train`` part of
  benchmarks/splits/dsb2018_stage1.json (408 images). ``tune`` (30) picks the
  checkpoint; ``val`` (50) is the benchmark's (benchmarks/clicks.py).
* Fluo-N2DH-SIM+ 01 (complete SEG masks, every 2nd frame) and Fluo-N2DH-GOWT1 01
  (sparse SEG frames: only the labelled nuclei are targets; test frames t021 t031 t033
  t039 never read).
* BBBC050 mouse embryo nuclei, z slices of stacks t001-t301 (t401, t501: 3D benchmark).
* ISBI 2012 EM: cells = connected parts of the cell-interior class, slices 0-13
  (14: checkpoint choice; 15-19: the benchmark's held-out cells).
* NIH3T3 images 0-11: convex foreground blobs as single nuclei.

Each training example is one object seen through a square window (as at prediction
time: a first click's window of any size around the object, or the window around the
current mask, ``context`` times the object), resized to ``crop_size``. The previous
mask is either empty (first click) or a damaged copy of the truth (grown, shrunk,
merged with a neighbour, cut, the wrong object, blobs); next clicks go on the largest
error regions (positive on missed parts, negative on extra parts). Half the batches are
then run through the network itself and get one more corrective click on its own
output (iterative training, as the simulated annotator works).

Run from the repository root (about 60 minutes on 2 CPU cores):

    nice -n 5 .venv/bin/python scripts/train_click_model.py --out src/cellsight/models/clicks
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402
from skimage.io import imread  # noqa: E402
from skimage.measure import regionprops  # noqa: E402

from cellsight.config.clicks import ClickConfig, ClickModelConfig  # noqa: E402
from cellsight.core.curation.clicks import (  # noqa: E402
    ClickModel,
    Window,
    click_discs,
    cut,
    new_click_network,
    normalize_image,
    resize2d,
    save_click_model,
    simulate_annotator,
)
from cellsight.core.nn.device import select_device  # noqa: E402
from cellsight.io.model_folder import load_model_folder  # noqa: E402
from cellsight.io.tiff import read_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SPLIT_FILE = ROOT / "benchmarks" / "splits" / "dsb2018_stage1.json"
CLICK_SPLIT = ROOT / "benchmarks" / "splits" / "clicks.json"
DSB = DATA / "nuclei2d" / "dsb2018_stage1"
SIM = DATA / "tracking" / "Fluo-N2DH-SIM+"
GOWT1 = DATA / "tracking" / "Fluo-N2DH-GOWT1"
BBBC = DATA / "nuclei3d" / "bbbc050"
EM = DATA / "em2d_isbi2012"
NIH = DATA / "nuclei2d" / "nih3t3"
GOWT1_TEST = {"021", "031", "033", "039"}
SPLIT = {
    "em_train": list(range(0, 14)), "em_tune": [14], "em_val": [15, 16, 17, 18, 19],
    "bbbc050_train": ["Emb1_t001", "Emb1_t101", "Emb1_t201", "Emb1_t301"],
    "bbbc050_val": ["Emb1_t401", "Emb1_t501"],
}
WEIGHTS = {"dsb": 0.40, "em": 0.22, "sim": 0.10, "gowt1": 0.10, "bbbc050": 0.10, "nih": 0.08}
MIN_AREA = 16


def _gray(a):
    a = np.asarray(a)
    return a if a.ndim == 2 else a[..., :3].mean(axis=-1)


def _frame(image, labels, cfg, targets=None):
    image = normalize_image(_gray(image), cfg)
    labels = np.asarray(labels).astype(np.int32)
    objects = []
    for region in regionprops(labels):
        if region.area < MIN_AREA or (targets is not None and region.label not in targets):
            continue
        objects.append((region.label, region.bbox))
    return {"image": image, "labels": labels, "objects": objects}


def em_instances(mask_png: Path) -> np.ndarray:
    """EM cells: 4-connected parts of the cell-interior class (membranes are 0)."""
    return ndi.label(imread(mask_png) == 255)[0].astype(np.int32)


def load_frames(cfg: ClickModelConfig, names: list[str]) -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {k: [] for k in WEIGHTS}
    for name in names:
        sets["dsb"].append(_frame(read_image(DSB / "images" / f"{name}.tif").data,
                                  read_image(DSB / "labels" / f"{name}.tif").data, cfg))
    for i in SPLIT["em_train"]:
        sets["em"].append(_frame(imread(EM / "images" / f"{i}.png"),
                                 em_instances(EM / "labels" / f"{i}.png"), cfg))
    for path in sorted((SIM / "01_GT" / "SEG").glob("man_seg*.tif"))[::2]:
        n = re.findall(r"\d+", path.stem)[-1]
        sets["sim"].append(_frame(read_image(SIM / "01" / f"t{n}.tif").data,
                                  read_image(path).data, cfg))
    for path in sorted((GOWT1 / "01_GT" / "SEG").glob("man_seg*.tif")):
        n = re.findall(r"\d+", path.stem)[-1]
        if n in GOWT1_TEST:
            continue
        labels = read_image(path).data
        sets["gowt1"].append(_frame(read_image(GOWT1 / "01" / f"t{n}.tif").data, labels, cfg,
                                    targets=set(np.unique(labels)) - {0}))
    for stem in SPLIT["bbbc050_train"]:
        stack = read_image(BBBC / "images" / f"{stem}.tif").data
        labels = read_image(BBBC / "labels" / f"{stem}.tif").data
        norm_all = normalize_image(stack, cfg)
        for z in range(0, stack.shape[0], 2):
            if labels[z].max() == 0:
                continue
            frame = _frame(norm_all[z], labels[z], ClickModelConfig(low_percentile=0.0,
                                                                     high_percentile=100.0))
            frame["image"] = norm_all[z]
            sets["bbbc050"].append(frame)
    for path in sorted((NIH / "gt").glob("*.png"), key=lambda p: int(p.stem))[:12]:
        blobs = ndi.label(_gray(imread(path)) > 0)[0]
        convex = {r.label for r in regionprops(blobs) if r.solidity >= 0.9}
        image = _gray(imread(NIH / "img" / f"dna-{int(path.stem)}.png"))
        sets["nih"].append(_frame(image, blobs, cfg, targets=convex))
    return {k: [f for f in v if f["objects"]] for k, v in sets.items()}


# --- one training example --------------------------------------------------------------
def _interior_click(mask: np.ndarray, rng) -> tuple[int, int]:
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    if rng.random() < 0.4:
        i = int(dist.argmax())
    else:
        cand = np.flatnonzero(dist >= 0.4 * dist.max())
        i = int(rng.choice(cand))
    y, x = np.unravel_index(i, mask.shape)
    return int(y), int(x)


def _error_clicks(prev: np.ndarray, target: np.ndarray, k: int, rng):
    """Up to ``k`` clicks on the largest error regions of ``prev``: (pos list, neg list)."""
    pos, neg = [], []
    if k <= 0:
        return pos, neg
    regions = []
    for err, positive in ((target & ~prev, True), (prev & ~target, False)):
        lab, n = ndi.label(err)
        if n:
            sizes = np.bincount(lab.ravel())[1:]
            for j in np.argsort(sizes)[::-1][:k]:
                if sizes[j] >= 6:
                    regions.append((sizes[j], lab == j + 1, positive))
    regions.sort(key=lambda r: -r[0])
    for _, region, positive in regions[:k]:
        y, x = _interior_click(region, rng)
        (pos if positive else neg).append((y, x))
    return pos, neg


def _damaged(target: np.ndarray, others: np.ndarray, rng) -> np.ndarray:
    """A plausible wrong previous mask for ``target`` (crop space)."""
    kind = rng.choice(["good", "grow", "shrink", "merge", "cut", "blob", "wrong"],
                      p=[0.25, 0.12, 0.12, 0.18, 0.13, 0.12, 0.08])
    d = max(2, int(np.sqrt(target.sum()) / 2))
    if kind == "good":
        r = int(rng.integers(0, 3))
        op = ndi.binary_dilation if rng.random() < 0.5 else ndi.binary_erosion
        return op(target, iterations=r) if r else target.copy()
    if kind == "grow":
        return ndi.binary_dilation(target, iterations=int(rng.integers(3, max(4, d))))
    if kind == "shrink":
        out = ndi.binary_erosion(target, iterations=int(rng.integers(2, max(3, d))))
        return out if out.any() else target.copy()
    near = np.unique(others[ndi.binary_dilation(target, iterations=6)])
    near = near[near > 0]
    if kind in ("merge", "wrong") and near.size:
        pick = others == rng.choice(near)
        if kind == "wrong":
            return pick
        return ndi.binary_closing(target | pick, iterations=2)
    if kind == "cut" or (kind in ("merge", "wrong")):
        yy, xx = np.mgrid[:target.shape[0], :target.shape[1]]
        cy, cx = ndi.center_of_mass(target)
        a = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(-0.3, 0.3) * d * 2
        keep = (yy - cy) * np.sin(a) + (xx - cx) * np.cos(a) > off
        out = target & keep
        return out if out.any() else target.copy()
    noise = ndi.gaussian_filter(rng.normal(size=target.shape), rng.uniform(2, 6))
    blobs = noise > np.quantile(noise, rng.uniform(0.9, 0.98))
    return target ^ (blobs & ndi.binary_dilation(target, iterations=d))


def make_example(frame: dict, rng, cfg: ClickModelConfig):
    """(input (4, crop, crop) tensor, target (crop, crop) bool, others (crop, crop) int)."""
    crop = cfg.crop_size
    label, (y0, x0, y1, x1) = frame["objects"][int(rng.integers(len(frame["objects"])))]
    d = max(y1 - y0, x1 - x0)
    first = rng.random() < 0.4
    labels = frame["labels"]
    if first:
        obj = labels[y0:y1, x0:x1] == label
        cy, cx = _interior_click(obj, rng)
        cy, cx = cy + y0, cx + x0
        side = d * float(np.exp(rng.uniform(np.log(0.8), np.log(8.0))))
    else:
        cy = (y0 + y1) / 2 + rng.normal(0, 0.06) * d
        cx = (x0 + x1) / 2 + rng.normal(0, 0.06) * d
        side = d * rng.uniform(1.25, 2.6)
    side = int(max(16, min(side, 2000)))
    wy, wx = int(round(cy - side / 2)), int(round(cx - side / 2))
    win = Window(wy, wx, side)
    window_labels = cut(labels, win, fill=0)
    image = resize2d(cut(frame["image"], win), crop)
    target = (resize2d(window_labels == label, crop) > 0.5).numpy()
    rows = np.floor((np.arange(crop) + 0.5) * side / crop).astype(int)
    others = window_labels.astype(np.int32)[rows][:, rows]
    others[others == label] = 0
    if not target.any():
        target = (others == -1)
    if first:
        s = crop / side
        pos = [((cy - wy + 0.5) * s - 0.5, (cx - wx + 0.5) * s - 0.5)]
        neg = []
        prev = np.zeros_like(target)
    else:
        prev = _damaged(target, others, rng) if target.any() else np.zeros_like(target)
        pos = [_interior_click(target, rng)] if target.any() else []
        k = int(rng.choice([0, 1, 2, 3], p=[0.35, 0.35, 0.2, 0.1]))
        p2, n2 = _error_clicks(prev, target, k, rng)
        pos += p2
        neg = n2
    return image, pos, neg, prev, target, others


def augment(image: torch.Tensor, rng) -> torch.Tensor:
    """Intensity changes only (geometry is augmented on the stacked tensor)."""
    x = image
    if rng.random() < 0.5:
        x = x.clamp(min=0) ** float(np.exp(rng.uniform(-0.5, 0.5)))
    x = x * float(rng.uniform(0.7, 1.3)) + float(rng.uniform(-0.15, 0.15))
    if rng.random() < 0.3:
        x = x + torch.randn_like(x) * float(rng.uniform(0.0, 0.15))
    if rng.random() < 0.08:
        x = 1.0 - x
    return x


def stack_input(image, pos, neg, prev, cfg) -> torch.Tensor:
    crop = cfg.crop_size
    return torch.stack([image, torch.from_numpy(click_discs(pos, crop, cfg.click_radius)),
                        torch.from_numpy(click_discs(neg, crop, cfg.click_radius)),
                        torch.from_numpy(prev.astype(np.float32))])


def make_batch(sets, names, probs, rng, cfg, n):
    items = []
    for _ in range(n):
        frames = sets[names[int(rng.choice(len(names), p=probs))]]
        image, pos, neg, prev, target, others = make_example(
            frames[int(rng.integers(len(frames)))], rng, cfg)
        items.append([augment(image, rng), pos, neg, prev, target])
    return items


def to_tensors(items, cfg, rng):
    xs, ys = [], []
    for image, pos, neg, prev, target in items:
        x = stack_input(image, pos, neg, prev, cfg)
        y = torch.from_numpy(target.astype(np.float32))[None]
        k = int(rng.integers(4))
        flip = rng.random() < 0.5
        x, y = torch.rot90(x, k, (1, 2)), torch.rot90(y, k, (1, 2))
        if flip:
            x, y = x.flip(2), y.flip(2)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def loss_fn(logits, target):
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def refine_in_loop(net, items, cfg, rng, device):
    """Replace each previous mask by the network's own output + one corrective click."""
    net.eval()
    with torch.inference_mode():
        x = torch.stack([stack_input(i[0], i[1], i[2], i[3], cfg) for i in items]).to(device)
        pred = (torch.sigmoid(net(x)[:, 0]) > 0.5).cpu().numpy()
    net.train()
    for item, p in zip(items, pred, strict=True):
        target = item[4]
        if not target.any():
            continue
        pos, neg = _error_clicks(p, target, 1, rng)
        item[1] = item[1] + pos
        item[2] = item[2] + neg
        item[3] = p
    return items


# --- checkpoint choice ------------------------------------------------------------------
def tune_objects(cfg, names, per_set=40, seed=1):
    """(image region, truth) pairs from the tune split: DSB ``tune`` and EM slice 14."""
    rng = np.random.default_rng(seed)
    out = {"nuclei": [], "cells": []}
    frames = [("nuclei", read_image(DSB / "images" / f"{n}.tif").data,
               read_image(DSB / "labels" / f"{n}.tif").data) for n in names]
    frames += [("cells", imread(EM / "images" / f"{i}.png"), em_instances(EM / "labels" /
                                                                           f"{i}.png"))
               for i in SPLIT["em_tune"]]
    for kind, image, labels in frames:
        image = normalize_image(_gray(image), cfg)
        regions = [r for r in regionprops(labels) if r.area >= 30]
        for r in rng.permutation(len(regions))[: max(3, per_set // max(1, len(frames) - 1))
                                                if kind == "nuclei" else per_set]:
            out[kind].append(region_of(image, labels, regions[r]))
    return {k: v[:per_set] for k, v in out.items()}


def region_of(image, labels, region, pad_factor=2.0):
    """Crop image + truth to a box ``pad_factor`` x the object (speeds the annotator up)."""
    y0, x0, y1, x1 = region.bbox
    d = max(y1 - y0, x1 - x0)
    m = int(d * pad_factor) + 64
    ya, xa = max(0, y0 - m), max(0, x0 - m)
    yb, xb = min(labels.shape[0], y1 + m), min(labels.shape[1], x1 + m)
    return image[ya:yb, xa:xb], labels[ya:yb, xa:xb] == region.label


def score(model: ClickModel, objects, max_clicks=6):
    cfg = ClickConfig()
    res = {}
    for kind, objs in objects.items():
        curves = []
        for image, truth in objs:
            s = simulate_annotator(image, truth, model, cfg, max_clicks=max_clicks,
                                   normalized=True, stop_at=0.9)
            curves.append(s + [s[-1]] * (max_clicks - len(s)))
        curves = np.array(curves)
        noc90 = np.mean([next((i + 1 for i, v in enumerate(c) if v >= 0.9), max_clicks + 1)
                         for c in curves])
        res[kind] = {"iou1": float(curves[:, 0].mean()), "iou3": float(curves[:, 2].mean()),
                     "noc90_capped": float(noc90)}
    res["score"] = float(np.mean([r["iou1"] + r["iou3"] for r in res.values()]))
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--steps", type=int, default=100000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dsb-limit", type=int, default=None, help="debug: fewer DSB images")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, default=None,
                        help="continue from this click-model folder (its weights)")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = ClickModelConfig()
    split = json.loads(SPLIT_FILE.read_text())
    names = split["train"][: args.dsb_limit]
    t0 = time.time()
    sets = load_frames(cfg, names)
    counts = {k: (len(v), sum(len(f["objects"]) for f in v)) for k, v in sets.items()}
    print(f"data loaded in {time.time() - t0:.0f} s: {counts}", flush=True)
    CLICK_SPLIT.write_text(json.dumps({"made_by": "scripts/train_click_model.py",
                                       "dsb2018_split": "benchmarks/splits/dsb2018_stage1.json",
                                       **SPLIT}, indent=1) + "\n")
    names_avail = [k for k in WEIGHTS if sets[k]]
    probs = np.array([WEIGHTS[k] for k in names_avail])
    probs /= probs.sum()
    tune = tune_objects(cfg, split["tune"][: (6 if args.dsb_limit else None)],
                        per_set=(8 if args.dsb_limit else 40))

    device = select_device(args.device)
    net = new_click_network(cfg).to(device)
    previous = {}
    if args.init is not None:
        init = load_model_folder(args.init, task="clicks")
        net.load_state_dict(init.state_dict)
        previous = init.meta.get("training", {})
        print(f"continuing from {args.init} ({previous.get('steps')} steps)", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    history, best = [], None
    if args.init is not None:  # the starting model competes too: never end worse
        net.eval()
        res = score(ClickModel(net, cfg, device), tune)
        net.train()
        res.update(step=0, seconds=0)
        history.append(res)
        best = (res, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
        print("tune", json.dumps(res), flush=True)
    start = time.time()
    step = 0
    while step < args.steps and time.time() - start < budget:
        frac = min(1.0, (time.time() - start) / budget)
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.5 * (1 + np.cos(np.pi * frac)) * 0.95 + 0.05)
        items = make_batch(sets, names_avail, probs, rng, cfg, args.batch)
        if rng.random() < 0.5:
            items = refine_in_loop(net, items, cfg, rng, device)
        x, y = to_tensors(items, cfg, rng)
        logits = net(x.to(device))
        loss = loss_fn(logits, y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.time() - start:.0f} s", flush=True)
        last = time.time() - start >= budget or step >= args.steps
        if step % args.eval_every == 0 or last:
            net.eval()
            model = ClickModel(net, cfg, device)
            res = score(model, tune)
            net.train()
            res.update(step=step, seconds=round(time.time() - start))
            history.append(res)
            print("tune", json.dumps(res), flush=True)
            if best is None or res["score"] > best[0]["score"]:
                best = (res, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
    res, state = best
    net.load_state_dict(state)
    meta = {
        "description": "Click to segment: click inside an object -> its mask; more clicks "
                       "(positive / negative) refine it.",
        "training": {"steps": step + int(previous.get("steps", 0)),
                     "seconds": round(time.time() - start) + int(previous.get("seconds", 0)),
                     "runs": [*previous.get("runs", []),
                              {"init": str(args.init) if args.init else None, "steps": step,
                               "minutes": args.minutes, "lr": args.lr}],
                     "batch": args.batch,
                     "lr": args.lr, "device": str(device), "seed": args.seed,
                     "best_step": res["step"], "tune": res, "history": history},
        "training_data": {"sets": {k: {"frames": c[0], "objects": c[1]}
                                   for k, c in counts.items()},
                          "split": "benchmarks/splits/clicks.json",
                          "weights": WEIGHTS},
    }
    save_click_model(args.out, net, cfg, meta)
    print(f"saved {args.out} (best step {res['step']}: {json.dumps(res)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
