"""Larger-than-memory benchmark (issue 20): seams, memory, throughput, engine, batch resume.

    .venv/bin/python benchmarks/scale.py            # full run (~25 min on 2 CPU cores)
    .venv/bin/python benchmarks/scale.py --quick    # small sizes, to check the script

Every measured step runs in its own subprocess (clean peak memory and timing):

- seams: a mosaic of real GOWT1 nuclei frames (6144x6144 from 36 frames of
  ../shared/data/tracking/Fluo-N2DH-GOWT1/01) segmented blockwise (1024 blocks) vs whole
  in memory (the default tiled path, and the network on the whole image in one tile);
  AP@0.5 of one against the other and the whole-image objects split by blocks;
- throughput: pixels per second of both on the same machine;
- engine: the same mosaic on a LocalCluster of 2 worker processes vs the threaded run;
- memory: peak resident memory segmenting a 16384x16384 uint16 OME-Zarr blockwise, and the
  in-memory path's peak measured on the mosaic, scaled by the pixel count (estimate);
- batch: 200 DSB2018 stage-1 images through ``cellsight segment --out DIR``, killed once
  half the outputs exist, resumed: every output complete, none written twice.

Results: benchmarks/results/scale.json (+ a table printed for docs/benchmarks.md).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CELLSIGHT_SHARED_DATA", ROOT.parent / "shared" / "data"))
GOWT1 = DATA / "tracking" / "Fluo-N2DH-GOWT1" / "01"
DSB = DATA / "nuclei2d" / "dsb2018_stage1" / "images"
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM).

    Not ``getrusage().ru_maxrss``: on Linux that survives exec, so a step started by the
    benchmark reported the parent's peak at the fork (the parent holds the mosaic and the
    comparisons' arrays: 4-5 GB), not its own.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- data ------------------------------------------------------------------------------


def _frames(n: int) -> list[np.ndarray]:
    import tifffile

    files = sorted(GOWT1.glob("t*.tif"))
    return [tifffile.imread(files[i % len(files)]) for i in range(n)]


def make_mosaic(side: int) -> np.ndarray:
    """Tile GOWT1 frames (1024x1024) into a side x side mosaic (uint8)."""
    k = side // 1024
    frames = _frames(k * k)
    rows = [np.concatenate(frames[r * k:(r + 1) * k], axis=1) for r in range(k)]
    return np.concatenate(rows, axis=0)


def make_big_zarr(path: Path, side: int) -> None:
    """A side x side uint16 OME-Zarr of GOWT1 frames, written lazily (bounded memory)."""
    import dask
    import dask.array as da

    from cellsight.io.omezarr import write_ome_zarr

    k = side // 1024
    files = sorted(GOWT1.glob("t*.tif"))

    def tile(i):
        import tifffile

        return tifffile.imread(files[i % len(files)]).astype(np.uint16) * 256

    blocks = [[da.from_delayed(dask.delayed(tile)(r * k + c), (1024, 1024), np.uint16)
               for c in range(k)] for r in range(k)]
    write_ome_zarr(path, da.block(blocks), axes="YX", chunks=(1024, 1024))


# --- steps (each in a subprocess) ----------------------------------------------------------


def step_whole(args) -> dict:
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.segmentation.instance_model import load_builtin, segment_instances
    from cellsight.io.omezarr import read_ome_zarr

    image = np.asarray(read_ome_zarr(args.image).data.compute())
    model = load_builtin("nuclei")
    start = time.monotonic()
    config = InstancePredictConfig(diameter=args.diameter, tile_size=args.tile)
    labels = segment_instances(model, image, config)
    seconds = time.monotonic() - start
    np.save(args.labels, labels)
    return {"seconds": seconds, "pixels": int(image.size), "objects": int(labels.max()),
            "peak_rss_mb": _peak_rss_mb()}


def step_blocks(args) -> dict:
    from cellsight.config.blocks import BlockConfig
    from cellsight.config.instances import InstancePredictConfig
    from cellsight.core.blocks.instances import segment_instances_blockwise
    from cellsight.core.segmentation.instance_model import load_builtin

    model = load_builtin("nuclei")
    blocks = BlockConfig(block_size=args.block, workers=args.workers)
    result = segment_instances_blockwise(
        model, args.image, InstancePredictConfig(diameter=args.diameter), blocks, out=args.out)
    return {"seconds": result.seconds, "objects": result.n_objects, "blocks": result.blocks,
            "peak_rss_mb": _peak_rss_mb(), "workers": args.workers}


def _run_step(name: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--step", name]
    for k, v in kw.items():
        cmd += [f"--{k}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"step {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- comparisons -----------------------------------------------------------------------------


def _read_labels(path) -> np.ndarray:
    from cellsight.io.omezarr import read_ome_zarr

    return np.asarray(read_ome_zarr(path).data.compute())


def compare(reference: np.ndarray, other: np.ndarray) -> dict:
    """AP@0.5 of ``other`` against ``reference`` and the reference objects it splits."""
    from cellsight.core.evaluation.metrics import match_instances

    m = match_instances(reference.astype(np.int64), other.astype(np.int64))
    ap = m.tp / max(m.tp + m.fp + m.fn, 1)
    ref, oth = reference.ravel(), other.ravel()
    fg = (ref > 0) & (oth > 0)
    pairs, counts = np.unique(np.stack([ref[fg], oth[fg]]), axis=1, return_counts=True)
    sizes = np.bincount(ref)
    big = counts >= 0.1 * sizes[pairs[0]]  # a piece is >= 10 % of the whole object
    pieces = np.bincount(pairs[0][big], minlength=len(sizes))
    split = int((pieces >= 2).sum())
    n_ref = int(len(np.unique(ref)) - 1)
    identical = _identical_up_to_renumbering(reference, other)
    return {"ap50": round(ap, 5), "tp": m.tp, "fp": m.fp, "fn": m.fn, "objects": n_ref,
            "split": split, "split_percent": round(100.0 * split / max(n_ref, 1), 4),
            "identical_pixels_percent": identical}


def _identical_up_to_renumbering(a: np.ndarray, b: np.ndarray) -> float:
    pairs, counts = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1, return_counts=True)
    best = {}
    for (x, y), c in zip(pairs.T, counts, strict=True):
        if c > best.get(x, (0, 0))[1]:
            best[x] = (y, c)
    agree = sum(c for _, c in best.values())
    return round(100.0 * agree / a.size, 5)


# --- batch -------------------------------------------------------------------------------------


def batch_resume(work: Path, n: int) -> dict:
    """``cellsight segment`` over n files, killed half way, resumed."""
    src = work / "batch_in"
    src.mkdir()
    for f in sorted(DSB.glob("*.tif"))[:n]:
        os.symlink(f, src / f.name)
    out = work / "batch_out"
    cmd = [sys.executable, "-m", "cellsight", "segment", "--model", "nuclei", "--out",
           str(out), str(src)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    while proc.poll() is None and len(list(out.glob("*.tif"))) < n // 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True)
    resumed = time.monotonic() - start
    final = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    rewritten = sum(final[k] != v for k, v in first.items())
    complete = _all_complete(src, out)
    import csv

    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    return {"files": n, "done_before_kill": len(first), "outputs": len(final),
            "rewritten": rewritten, "complete": complete,
            "skipped_on_resume": sum(r["status"] == "skipped" for r in rows),
            "done_on_resume": sum(r["status"] == "done" for r in rows),
            "errors": sum(r["status"] == "error" for r in rows),
            "leftover_temp_files": len(list(out.glob(".*.part"))), "resume_seconds": resumed}


def _all_complete(src: Path, out: Path) -> bool:
    import tifffile

    for f in sorted(src.glob("*.tif")):
        target = out / f"{f.stem}.tif"
        if not target.exists():
            return False
        if tifffile.imread(target).shape != tifffile.imread(f).shape[:2]:
            return False
    return True


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default="mosaic,memory,batch",
                        help="Parts to run (the others are kept from the results file).")
    parser.add_argument("--step")
    for name in ("image", "labels", "out", "diameter", "block", "workers", "tile"):
        parser.add_argument(f"--{name}")
    args = parser.parse_args()
    if args.step:
        args.diameter = float(args.diameter)
        args.block = int(args.block or 1024)
        args.workers = int(args.workers or 0)
        args.tile = int(args.tile or 512)
        step = {"whole": step_whole, "blocks": step_blocks}[args.step]
        print(json.dumps(step(args)))
        return
    run_all(args.quick, set(args.parts.split(",")))


def run_all(quick: bool, parts: set[str]) -> None:
    from cellsight.core.segmentation.instance_model import estimate_diameter, load_builtin
    from cellsight.io.omezarr import write_ome_zarr

    mosaic_side, block, big_side, n_files = (2048, 512, 4096, 20) if quick else (
        6144, 1024, 16384, 200)
    work = Path(tempfile.mkdtemp(prefix="cellsight-scale-"))
    results = {} if quick or not RESULTS.exists() else json.loads(RESULTS.read_text())
    results.update({"quick": quick, "cpu_threads": os.cpu_count()})
    try:
        mosaic = make_mosaic(mosaic_side)
        c = mosaic_side // 2
        centre = mosaic[c - 512:c + 512, c - 512:c + 512]
        diameter = estimate_diameter(load_builtin("nuclei"), centre)
        results["diameter"] = round(diameter, 2)
        if "mosaic" in parts:
            mosaic_path = work / "mosaic.ome.zarr"
            write_ome_zarr(mosaic_path, mosaic, axes="YX", chunks=(block, block))
            _mosaic_part(results, work, mosaic_path, mosaic_side, block, diameter)
        if "memory" in parts:
            big = work / "big.ome.zarr"
            make_big_zarr(big, big_side)
            memory = _run_step("blocks", image=big, out=work / "big_labels.ome.zarr",
                               diameter=diameter, block=block)
            whole_mb = results["mosaic"]["whole"]["peak_rss_mb"]
            memory["in_memory_estimate_mb"] = round(whole_mb * big_side**2 / mosaic_side**2)
            memory["side"] = big_side
            results["memory"] = memory
        if "batch" in parts:
            results["batch"] = batch_resume(work, n_files)
        results["plate_1tb"] = plate_estimate(results["mosaic"]["blockwise"], block)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def _mosaic_part(results, work, mosaic_path, mosaic_side, block, diameter) -> None:
    whole = _run_step("whole", image=mosaic_path, labels=work / "whole.npy", diameter=diameter)
    # the same network on the whole image in ONE tile: what blocks are meant to reproduce
    untiled = _run_step("whole", image=mosaic_path, labels=work / "untiled.npy",
                        diameter=diameter, tile=4096)
    blocks = _run_step("blocks", image=mosaic_path, out=work / "blocks.ome.zarr",
                       diameter=diameter, block=block)
    cluster = _run_step("blocks", image=mosaic_path, out=work / "cluster.ome.zarr",
                        diameter=diameter, block=block, workers=2)
    whole_labels = np.load(work / "whole.npy")
    block_labels = _read_labels(work / "blocks.ome.zarr")
    untiled_labels = np.load(work / "untiled.npy")
    results["mosaic"] = {"side": mosaic_side, "block": block, "whole": whole,
                         "whole_untiled": untiled, "blockwise": blocks, "cluster": cluster,
                         "seams": compare(whole_labels, block_labels),
                         "seams_vs_untiled": compare(untiled_labels, block_labels),
                         "tiled_vs_untiled": compare(untiled_labels, whole_labels),
                         "cluster_vs_threads": compare(
                             block_labels, _read_labels(work / "cluster.ome.zarr"))}
    px = mosaic_side**2
    results["throughput_ratio"] = round(whole["seconds"] / blocks["seconds"], 3)
    results["mp_per_s"] = {"whole": round(px / whole["seconds"] / 1e6, 3),
                           "blockwise": round(px / blocks["seconds"] / 1e6, 3),
                           "cluster2": round(px / cluster["seconds"] / 1e6, 3)}


def plate_estimate(blocks: dict, block: int) -> dict:
    """Blocks, node-hours for a 1 TB uint16 plate from the measured per-block cost (CPU)."""
    pixels = 1e12 / 2
    n_blocks = pixels / block**2
    seconds_per_block = blocks["seconds"] / blocks["blocks"]
    cpu_hours = n_blocks * seconds_per_block / 3600
    return {"blocks": int(n_blocks), "seconds_per_block_2cpu": round(seconds_per_block, 2),
            "hours_on_one_2cpu_node": round(cpu_hours, 1),
            "hours_on_50_such_nodes": round(cpu_hours / 50, 2)}


if __name__ == "__main__":
    main()
