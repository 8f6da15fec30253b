#!/usr/bin/env python3
"""How closely cellsight's package runner matches bioimageio.core (issue 16), measured.

For each package: cellsight's ``predict_package`` (tiled, with the package's own pre- and
postprocessing) on the package's test input vs ``bioimageio.core``'s prediction with the
same weights format; prints max abs differences as JSON. Packages:

* ``nuclei``: the built-in model exported by ``cellsight export`` (run as a foreign package,
  torchscript, not as cellsight's own model);
* ``careamics``: ``tests/data/bmz/careamics_n2v_w2s_ts.zip`` (written by CAREamics 0.3.5),
  also against CAREamics' own stored test output;
* ``finetuned``: a copy of a tiny cellsight semantic package stripped of its cellsight
  config ("another tool"), fine-tuned 60 steps by ``fine_tune_package`` on the bundled
  DSB2018 crop, its rewritten package compared again.

Usage: ``OMP_WAIT_POLICY=PASSIVE python benchmarks/bmz_agreement.py`` (about a minute on
one CPU core).
"""

import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "io"))


def _npy(pkg, name):
    return np.load(io.BytesIO(zipfile.ZipFile(pkg).read(name)))


def _core(pkg, x, fmt="torchscript"):
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    descr = load_description(pkg, perform_io_checks=False)
    pipeline = create_prediction_pipeline(descr, weight_format=fmt, devices=["cpu"])
    member = str(descr.inputs[0].id)
    return next(iter(predict(model=pipeline, inputs={member: x}).members.values())).data.values


def _ours(pkg, x):
    from cellsight.core.bmz.run import load_package, predict_package

    model = load_package(pkg, prefer_cellsight=False)
    return predict_package(model, x[0, 0], device="cpu").output, model.weights


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from test_bmz import foreign_copy, tiny_model

    from cellsight.config.finetune import FineTuneConfig
    from cellsight.core.bmz.export import export_package
    from cellsight.core.bmz.finetune import fine_tune_package
    from cellsight.plugin.samples import load_sample

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nuclei = export_package("nuclei", tmp / "nuclei.zip")
        x = _npy(nuclei, "test_input.npy")
        ours, fmt = _ours(nuclei, x)
        results["nuclei"] = {"weights": fmt, "input": list(x.shape),
                             "max_abs_diff_vs_bioimageio_core": float(
                                 np.abs(ours - _core(nuclei, x)[0]).max())}
        care = ROOT / "tests/data/bmz/careamics_n2v_w2s_ts.zip"
        x = _npy(care, "inputs.npy")
        ours, fmt = _ours(care, x)
        results["careamics"] = {
            "weights": fmt, "input": list(x.shape),
            "max_abs_diff_vs_bioimageio_core": float(np.abs(ours - _core(care, x)[0]).max()),
            "max_abs_diff_vs_careamics_test_output": float(
                np.abs(ours - _npy(care, "outputs.npy")[0]).max())}
        own = export_package(tiny_model("semantic"), tmp / "own.zip")
        parent = foreign_copy(own, tmp / "parent.zip")
        image = load_sample("nuclei_2d")[:96, :128]
        classes = np.where(load_sample("nuclei_2d_masks")[:96, :128] > 0, 3, 1)
        tuned = fine_tune_package(image, classes, FineTuneConfig(
            steps=60, batch_size=2, patch_size=64, device="cpu", holdout_fraction=0.3,
            learning_rate=0.01), package=parent, out=tmp / "child.zip")
        x = _npy(tuned.package, "test_input.npy")
        ours, fmt = _ours(tuned.package, x)
        results["finetuned"] = {
            "weights": fmt, "input": list(x.shape), "held_out": tuned.held_out,
            "mean_iou_before": round(tuned.before, 4), "mean_iou_after": round(tuned.after, 4),
            "max_abs_diff_vs_bioimageio_core": float(
                np.abs(ours - _core(tuned.package, x)[0]).max())}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
