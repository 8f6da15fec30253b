#!/usr/bin/env python3
"""Make a small bioimage.io package with CAREamics (a package written by another tool).

Runs inside its own virtual environment (see requirements-careamics.txt); it never
imports cellsight. It

1. reads one W2S noisy widefield image (``../shared/data/denoise/w2s/noisy/``) and crops
   a ``--crop`` x ``--crop`` window from its top-left corner (float32);
2. trains a tiny CAREamics Noise2Void model on it (``create_advanced_n2v_config``: U-Net
   depth 2 with 8 initial channels, 32x32 patches, batch 8, ``--epochs`` x ``--steps``);
3. exports it with CAREamics' own ``CAREamist.export_to_bmz`` (the test input is the
   top-left 64x64 of the crop) -> ``OUT/careamics_n2v_w2s.zip``. CAREamics writes
   ``pytorch_state_dict`` weights whose architecture comes from the ``careamics`` Python
   package (``careamics.models.unet.UNet``), no code file and no TorchScript;
4. adds TorchScript weights to a copy with bioimageio.core's own weight converter
   (``bioimageio.core.weight_converters.add_weights``) -> ``OUT/careamics_n2v_w2s_ts.zip``,
   so that a tool without CAREamics installed can run it.

Usage (from the repository root)::

    /work/venvs/careamics/bin/python benchmarks/peers/careamics_bmz.py --out tests/data/bmz

Threads: torch uses ``--threads`` (default 1).
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

DEFAULT_IMAGE = "../shared/data/denoise/w2s/noisy/w2s_001_0.tif"


_TORCHVISION_OPS = []


def declare_torchvision_ops() -> None:
    """Let ``import torchvision`` work next to the CPU-only torch.

    PyPI's torchvision wheels are CUDA builds: their C++ operators do not load beside
    torch ``+cpu``, and ``import torchvision`` (pulled in by torchmetrics and by CAREamics'
    export) then fails registering fake kernels for ``torchvision::nms`` / ``qnms``.
    CAREamics' N2V uses none of these operators; declaring their schemas lets the import
    finish (calling them would still fail).
    """
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_OPS.append(lib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument("--out", required=True, help="Folder for the two package zips.")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="Batches per epoch.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import tifffile
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    declare_torchvision_ops()
    import careamics
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    image = tifffile.imread(args.image).astype(np.float32)
    crop = image[: args.crop, : args.crop].copy()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="careamics-"))
    try:
        config = create_advanced_n2v_config(
            experiment_name="cellsight_w2s_tiny",
            data_type="array",
            axes="YX",
            patch_size=[32, 32],
            batch_size=8,
            num_epochs=args.epochs,
            num_steps=args.steps,
            n_val_patches=4,
            num_workers=0,
            model_params={"depth": 2, "num_channels_init": 8},
        )
        careamist = CAREamist(config, work_dir=work, enable_progress_bar=False)
        careamist.train(train_data=crop)
        package = out / "careamics_n2v_w2s.zip"
        careamist.export_to_bmz(
            path_to_archive=package,
            friendly_model_name="cellsight-test-careamics-n2v-w2s",
            input_array=crop[:64, :64].copy(),
            authors=[{"name": "cellsight developers"}],
            general_description="A tiny Noise2Void model trained for a few steps on a crop "
            "of one W2S widefield image, made to test that cellsight runs packages written "
            "by CAREamics. Not a useful denoiser.",
            data_description=f"{Path(args.image).name} (W2S, Zhou et al. 2020), top-left "
            f"{args.crop}x{args.crop} crop.",
        )
        converted = add_torchscript(package, out / "careamics_n2v_w2s_ts.zip", work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "careamics": careamics.__version__, "torch": torch.__version__,
        "image": args.image, "crop": args.crop, "epochs": args.epochs, "steps": args.steps,
        "packages": {p.name: p.stat().st_size for p in (package, converted)},
    }, indent=2))


def add_torchscript(package: Path, target: Path, work: Path) -> Path:
    """A copy of ``package`` with TorchScript weights of its network in eval mode.

    bioimageio.core 0.11.0's ``add_weights`` traces the network as
    ``load_torch_model`` returns it, in training mode: its batch normalisation then uses
    the batch's statistics and the TorchScript output differs from the state dict's (by
    ~99 grey values on this model). So the network is loaded with bioimageio.core, put in
    eval mode and scripted (traced where scripting fails) here.
    """
    import numpy as np
    import torch
    from bioimageio.core import create_prediction_pipeline, predict
    from bioimageio.core.backends.pytorch_backend import load_torch_model
    from bioimageio.spec import load_model_description, save_bioimageio_package
    from bioimageio.spec._internal.version_type import Version
    from bioimageio.spec.model.v0_5 import TorchscriptWeightsDescr

    descr = load_model_description(package, format_version="latest")
    net = load_torch_model(descr.weights.pytorch_state_dict, load_state=True,
                           devices=["cpu"]).eval()
    x = torch.from_numpy(descr.get_input_test_arrays()[0])
    with torch.no_grad():
        try:
            scripted, how = torch.jit.script(net), "scripted"
        except Exception:  # noqa: BLE001 - tracing is the documented fallback
            scripted, how = torch.jit.trace(net, x), "traced"
    path = work / "weights_torchscript.pt"
    scripted.save(path)
    descr.weights.torchscript = TorchscriptWeightsDescr(
        source=path.absolute(), pytorch_version=Version(torch.__version__),
        parent="pytorch_state_dict",
        comment=f"{how} in eval mode by cellsight's benchmarks/peers/careamics_bmz.py")
    save_bioimageio_package(descr, output_path=target)
    # the two weights formats must agree on the test input
    checked = load_model_description(target, perform_io_checks=False)
    outputs = {}
    for fmt in ("pytorch_state_dict", "torchscript"):
        pipeline = create_prediction_pipeline(checked, weight_format=fmt, devices=["cpu"])
        sample = predict(model=pipeline, inputs={"input": descr.get_input_test_arrays()[0]})
        outputs[fmt] = next(iter(sample.members.values())).data.values
    diff = float(np.abs(outputs["torchscript"] - outputs["pytorch_state_dict"]).max())
    if diff > 1e-3:
        raise SystemExit(f"TorchScript and state dict disagree by {diff} on the test input.")
    print(f"torchscript ({how}) vs pytorch_state_dict on the test input: max abs diff {diff}")
    return target


if __name__ == "__main__":
    main()
