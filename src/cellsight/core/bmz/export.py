"""Export a cellsight model (semantic, instance, Noise2Void) as a bioimage.io package.

The package holds the U-Net as ``pytorch_state_dict`` weights with its architecture
file (:mod:`cellsight.core.nn.unet_arch`, torch only) and as TorchScript; the
normalisation as preprocessing (percentiles per image, stored values, or N2V's mean /
std) and softmax or N2V's de-normalisation as postprocessing; test tensors computed by
cellsight; a cover; the model card; and cellsight's ``config.yaml`` and ``meta.json``
as attachments, so that importing the package into cellsight gives the same model back.
"""

import json
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cellsight.core.nn import unet_arch
from cellsight.core.nn.unet import UNet
from cellsight.core.nn.unet_arch import UNetArch

#: file names of the attached cellsight model folder inside a package
CONFIG_ATTACHMENT = "cellsight_config.yaml"
META_ATTACHMENT = "cellsight_meta.json"
OUTPUTS = {
    "semantic": "class probabilities (softmax)",
    "instance": "probabilities of background, interior and boundary (softmax)",
    "n2v": "denoised image",
}


@dataclass
class Exportable:
    """What an export needs from a model: task, network, config dict, metadata."""

    task: str
    net: UNet
    config: dict[str, Any]
    meta: dict[str, Any]
    name: str


def _from_loaded(model, name: str) -> Exportable:
    from cellsight.core.denoise.model import N2VModel

    if isinstance(model, N2VModel):
        return Exportable("n2v", model.net, model.config_dict(), dict(model.meta), name)
    config = model.config.model_dump(mode="json")
    return Exportable(config["task"], model.net, config, dict(model.meta), name)


def exportable(model, name: str | None = None) -> Exportable:
    """Read a model folder or built-in name (or take a loaded model) for export.

    Raises
    ------
    ValueError
        If it is not a semantic, instance or N2V model.
    """
    from cellsight.io.model_folder import read_config
    from cellsight.models import BUILTIN_MODELS, resolve_model

    if not isinstance(model, str | os.PathLike):
        return _from_loaded(model, name or "model")
    folder = resolve_model(model)
    task = read_config(folder)["task"]
    if task == "n2v":
        from cellsight.core.denoise.model import N2VModel as cls
    elif task == "instance":
        from cellsight.core.segmentation.instance_model import InstanceModel as cls
    elif task == "semantic":
        from cellsight.core.segmentation.semantic import SemanticModel as cls
    else:
        raise ValueError(f"{folder} holds a {task!r} model; only semantic, instance and n2v "
                         "models can be exported.")
    builtin = str(model) in BUILTIN_MODELS and not Path(str(model)).is_dir()
    return _from_loaded(cls.load(folder), name or (str(model) if builtin else folder.name))


def _halo(divisor: int) -> int:
    return max(8, 2 * divisor)


def _processing(ex: Exportable, spatial: str) -> tuple[list[dict], list[dict]]:
    """Pre- and postprocessing steps (spec dicts) that reproduce cellsight's prediction."""
    channel = [{"id": "softmax", "kwargs": {"axis": "channel"}}]
    if ex.task == "n2v":
        norm = ex.config["normalisation"]
        pre = {"id": "fixed_zero_mean_unit_variance",
               "kwargs": {"axis": "channel", "mean": norm["mean"], "std": norm["std"]}}
        post = {"id": "scale_linear",
                "kwargs": {"axis": "channel", "gain": norm["std"], "offset": norm["mean"]}}
        return [pre], [post]
    norm = ex.config["normalization"]
    if norm["mode"] == "stored" and norm["low_values"]:
        lows, highs = norm["low_values"], norm["high_values"]
        gain = [1.0 / max(h - lo, 1e-8) for lo, h in zip(lows, highs, strict=True)]
        offset = [-lo * g for lo, g in zip(lows, gain, strict=True)]
        pre = {"id": "scale_linear", "kwargs": {"axis": "channel", "gain": gain, "offset": offset}}
    else:
        pre = {"id": "scale_range", "kwargs": {
            "axes": list(spatial), "min_percentile": norm["low"], "max_percentile": norm["high"],
            "eps": 1e-6}}
    return [pre], channel


def _channel_names(ex: Exportable) -> tuple[list[str], list[str]]:
    unet = ex.net.config
    inputs = [f"channel{c}" for c in range(unet.in_channels)]
    if ex.task == "n2v":
        return inputs, [f"denoised{c}" for c in range(unet.out_channels)]
    if ex.task == "instance":
        return inputs, ["background", "interior", "boundary"]
    offset = 0 if ex.config.get("zero_is_background") else 1
    return inputs, [f"class{c + offset}" for c in range(unet.out_channels)]


def _bundled(filename: str) -> Path | None:
    here = Path(__file__).resolve().parents[2]  # the cellsight package folder
    for folder in (here / "sample_data", here.parents[1] / "sample_data"):
        if (folder / filename).is_file():
            return folder / filename
    return None


def default_test_image(task: str, ndim: int, channels: int, size: int) -> np.ndarray:
    """A ``(C, *spatial)`` test image: a bundled sample crop for 2D one-channel models.

    Segmentation models get the DSB2018 nuclei sample, N2V models the W2S noisy sample;
    other shapes get smooth random blobs (seeded).
    """
    sample = _bundled("w2s_noisy.tif" if task == "n2v" else "dsb2018_nuclei.tif")
    if ndim == 2 and channels == 1 and sample is not None:
        from cellsight.io.tiff import read_image

        data = np.asarray(read_image(sample).data, np.float32)
        while data.ndim > 2:
            data = data[0]
        if min(data.shape) >= size:
            y0, x0 = ((s - size) // 2 for s in data.shape)
            return data[None, y0 : y0 + size, x0 : x0 + size].copy()
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    spots = (rng.random((channels,) + (size,) * ndim) > 0.995).astype(np.float32)
    blobs = ndi.gaussian_filter(spots, (0,) + (size / 40,) * ndim) * 1000
    return (blobs + rng.normal(10, 2, blobs.shape)).astype(np.float32)


def _normalised(ex: Exportable, image: np.ndarray) -> np.ndarray:
    if ex.task == "n2v":
        from cellsight.core.denoise.data import normalise

        norm = ex.config["normalisation"]
        return normalise(image[None], norm["mean"], norm["std"])[0]
    from cellsight.config.semantic import SemanticConfig
    from cellsight.core.segmentation.semantic import normalize_frame

    cfg = dict(ex.config)
    cfg.pop("task", None)
    keep = {k: v for k, v in cfg.items() if k in SemanticConfig.model_fields}
    return normalize_frame(image, SemanticConfig.model_validate(keep))


def reference_output(ex: Exportable, image: np.ndarray) -> np.ndarray:
    """cellsight's output for one valid-sized ``(C, *spatial)`` image, in one forward pass."""
    import torch

    from cellsight.core.segmentation.semantic import softmax

    x = torch.from_numpy(_normalised(ex, image)[None])
    was = ex.net.training
    ex.net.eval()
    with torch.inference_mode():
        out = ex.net.cpu()(x)[0].float().numpy()
    ex.net.train(was)
    if ex.task == "n2v":
        from cellsight.core.denoise.data import denormalise

        norm = ex.config["normalisation"]
        return denormalise(out[None], norm["mean"], norm["std"])[0]
    return softmax(out)


def _grey(a: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(a, [1, 99.8])
    return (np.clip((a - lo) / max(hi - lo, 1e-8), 0, 1) * 255).astype(np.uint8)


def cover_image(task: str, image: np.ndarray, output: np.ndarray) -> np.ndarray:
    """RGB picture: the input (left) beside what the model makes of it (right)."""
    mid = tuple(s // 2 for s in image.shape[1:-2])  # middle slice of volumes
    left = _grey(image[(0, *mid)])
    out = output[(slice(None), *mid)]
    if task == "instance":
        right = np.stack([_grey(out[2]), _grey(out[1] + out[2]), _grey(out[1])], -1)
    elif task == "semantic":
        palette = np.array([[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115],
                            [240, 228, 66], [0, 114, 178], [213, 94, 0], [204, 121, 167]])
        right = palette[np.argmax(out, 0) % len(palette)].astype(np.uint8)
    else:
        right = np.repeat(_grey(out[0])[..., None], 3, -1)
    return np.concatenate([np.repeat(left[..., None], 3, -1), right], axis=1)


def _torchscript(ex: Exportable, example: np.ndarray, path: Path) -> Path:
    import torch

    arch = UNetArch(**ex.net.config.model_dump())
    arch.load_state_dict(ex.net.state_dict())
    arch.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(arch, torch.from_numpy(example[None]))
    traced.save(str(path))
    return path


def _training_text(meta: dict) -> str:
    data = meta.get("training_data") or {}
    if not data:
        return ""
    parts = [f"{data.get('frames', '?')} training images"]
    sources = data.get("sources") or []
    if sources:
        groups: dict[str, int] = {}
        for s in sources:
            key = str(s.get("name", "?")).split(" ")[0]
            groups[key] = groups.get(key, 0) + 1
        parts.append("from " + ", ".join(f"{k} ({n})" for k, n in groups.items()))
    if data.get("annotated_pixels_per_class"):
        parts.append(f"annotated pixels per class {data['annotated_pixels_per_class']}")
    if data.get("shape"):
        parts.append(f"image shape {data['shape']}")
    return "; ".join(parts) + "."


def _card(ex: Exportable) -> str:
    from cellsight.models import model_card

    text = model_card(ex.name) or _generated_card(ex)
    parent, tune = parent_record(ex.meta), fine_tune_record(ex.meta)
    if parent:
        text += f"\n\n## Fine-tuning\n\nThis version was {_fine_tune_text(parent, tune)}.\n"
    if not re.search("#.*[vV]alidation", text):  # the heading bioimage.io looks for
        metrics = ex.meta.get("metrics") or {}
        text += ("\n\n## Validation\n\nBest validation loss "
                 f"{metrics.get('best_score', 'n/a')} at step {metrics.get('best_step', 'n/a')} "
                 "(held-out patches of the training images).\n")
    return text + _usage(ex)


def _generated_card(ex: Exportable) -> str:
    unet = ex.net.config
    metrics = ex.meta.get("metrics") or {}
    lines = [
        f"# {ex.name}: cellsight {ex.task} model", "",
        f"- Task: {ex.task} ({OUTPUTS[ex.task]})",
        f"- Architecture: {unet.ndim}D U-Net, depth {unet.depth}, {unet.base_channels} base "
        f"channels, {unet.norm} normalisation, {unet.in_channels} input channel(s)",
        f"- Training data: {_training_text(ex.meta) or 'not recorded'}",
        f"- Trained by cellsight {ex.meta.get('cellsight_version', '?')} at "
        f"{ex.meta.get('created_at', '?')}", "",
        "## Validation", "",
        f"Best validation loss {metrics.get('best_score', 'n/a')} at step "
        f"{metrics.get('best_step', 'n/a')} of {metrics.get('steps_done', 'n/a')}.", "",
    ]
    return "\n".join(lines)


def parent_record(meta: dict) -> dict | None:
    """``config.cellsight.parent`` of a model fine-tuned from a package, else None."""
    tune = meta.get("fine_tune") or {}
    parent = tune.get("parent_package")
    if not parent:
        return None
    return {"name": parent.get("name"), "version": parent.get("version"),
            "id": parent.get("id"), "sha256": parent.get("sha256")}


def fine_tune_record(meta: dict) -> dict | None:
    """``config.cellsight.fine_tune``: steps, data, held-out before / after (or None)."""
    tune = meta.get("fine_tune") or {}
    if not tune.get("parent_package"):
        return None
    return {"steps": tune.get("steps_done"), "data": _training_text(meta) or "not recorded",
            "held_out": tune.get("held_out"), "ap50_before": tune.get("ap50_before"),
            "ap50_after": tune.get("ap50_after"), "kept": tune.get("kept")}


def next_version(version: str | None) -> str:
    """The version after a parent's: the last number + 1 (``1.0`` -> ``1.1``)."""
    parts = str(version or "").split(".")
    if parts and parts[-1].isdigit():
        return ".".join([*parts[:-1], str(int(parts[-1]) + 1)])
    return "1.1"


def _fine_tune_text(parent: dict, tune: dict) -> str:
    sha = (parent.get("sha256") or "?")[:12]
    return (f"fine-tuned by cellsight from {parent.get('name')} {parent.get('version')} "
            f"(package sha256 {sha}...) for {tune.get('steps')} steps on {tune.get('data')} "
            f"AP@0.5 on held-out corrections ({tune.get('held_out')}): "
            f"{tune.get('ap50_before')} -> {tune.get('ap50_after')}")


def _usage(ex: Exportable) -> str:
    scale = ex.config.get("scale", 1.0)
    note = "" if scale == 1.0 else (
        f" The network works at {scale:g} x the image's pixel size: other tools must resize "
        "images by that factor first (cellsight does it itself from the attached config).")
    return ("\n\n## Using this package\n\nExported by `cellsight export`. In cellsight: "
            "`cellsight segment --model PKG.zip` (or `denoise`), or choose the package in a "
            f"dock's model chooser. The attached `{CONFIG_ATTACHMENT}` and `{META_ATTACHMENT}` "
            f"are cellsight's own model files.{note}\n")


def export_package(
    model,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    name: str | None = None,
    test_image: np.ndarray | None = None,
    authors: list[str] | None = None,
    license: str = "BSD-3-Clause",
    version: str | None = None,
    cellsight: dict[str, Any] | None = None,
) -> Path:
    """Write a model as a bioimage.io model package (format 0.5 zip).

    Parameters
    ----------
    model : path, built-in name, or loaded model
        A model folder, ``"nuclei"``, or a ``SemanticModel`` / ``InstanceModel`` /
        ``N2VModel``.
    out : path
        The zip to write (atomic).
    overwrite : bool
        Replace an existing file; otherwise an existing ``out`` is refused.
    name : str, optional
        Package name (default: the built-in name or the folder's name).
    test_image : numpy.ndarray, optional
        ``(C, *spatial)`` raw test input, sizes multiples of ``2**depth`` (default: a
        256-pixel crop of a bundled sample, or blobs).
    authors, license, version : optional
        Description fields (licence as an SPDX id). The version defaults to ``1.0``, or
        for a model fine-tuned from a package to the parent's version + 1, with the parent
        (name, version, sha256) in ``config.cellsight.parent``, the fine-tuning (steps,
        data, held-out AP before / after) in ``config.cellsight.fine_tune`` and both in
        the version comment and the model card.
    cellsight : dict, optional
        Extra entries for the package's ``config.cellsight`` (e.g. ``parent``).

    Returns
    -------
    pathlib.Path
        The package.

    Raises
    ------
    ValueError
        If ``out`` exists (without ``overwrite``), the model cannot be exported or the
        test image does not fit it.

    Examples
    --------
    >>> import os, tempfile
    >>> from cellsight.config.semantic import SemanticConfig
    >>> from cellsight.config.unet import UNetConfig
    >>> from cellsight.core.nn.unet import UNet
    >>> from cellsight.core.segmentation.semantic import SemanticModel
    >>> net = UNet(UNetConfig(depth=2, base_channels=8, out_channels=2))
    >>> model = SemanticModel(SemanticConfig(n_classes=2, unet=net.config), net)
    >>> out = os.path.join(tempfile.mkdtemp(), "membranes.zip")
    >>> export_package(model, out, name="membranes").name  # test image: a bundled sample
    'membranes.zip'
    >>> export_package(model, out)
    Traceback (most recent call last):
    ...
    ValueError: ... exists; pass overwrite=True (--overwrite) to replace it.
    """
    from cellsight.io.bmz.write import PackageParts, write_package

    out = Path(out)
    if out.exists() and not overwrite:
        raise ValueError(f"{out} exists; pass overwrite=True (--overwrite) to replace it.")
    ex = exportable(model, name)
    unet = ex.net.config
    divisor = 2**unet.depth
    spatial = "yx" if unet.ndim == 2 else "zyx"
    halo = _halo(divisor)
    min_size = 2 * halo + divisor
    if test_image is None:
        size = max(256, min_size) if unet.ndim == 2 else min_size
        test_image = default_test_image(ex.task, unet.ndim, unet.in_channels, size)
    test_image = _check_test_image(np.asarray(test_image, np.float32), unet, min_size)
    output = reference_output(ex, test_image)
    pre, post = _processing(ex, spatial)
    ins, outs = _channel_names(ex)
    import torch

    with tempfile.TemporaryDirectory(prefix="cellsight-export-") as tmp:
        folder = Path(tmp)
        state = folder / "weights.pt"
        torch.save({k: v.detach().cpu() for k, v in ex.net.state_dict().items()}, state)
        arch = folder / "cellsight_unet.py"
        arch.write_text(Path(unet_arch.__file__).read_text())
        (folder / CONFIG_ATTACHMENT).write_text(yaml.safe_dump(ex.config, sort_keys=False))
        (folder / META_ATTACHMENT).write_text(json.dumps(ex.meta, indent=1, default=str))
        extra = {"task": ex.task, "output": OUTPUTS[ex.task], "scale": ex.config.get("scale", 1.0),
                 "config_attachment": CONFIG_ATTACHMENT, "meta_attachment": META_ATTACHMENT}
        parent, tune = parent_record(ex.meta), fine_tune_record(ex.meta)
        if parent:
            extra.update(parent=parent, fine_tune=tune,
                         version_comment=_fine_tune_text(parent, tune))
            version = version or next_version(parent.get("version"))
        extra.update(cellsight or {})
        parts = PackageParts(
            name=f"cellsight {ex.name}"[:128],
            description=f"cellsight {unet.ndim}D U-Net, {ex.task} model: {OUTPUTS[ex.task]}.",
            spatial_axes=spatial, input_channels=ins, output_channels=outs,
            min_size=min_size, step=divisor, halo=halo, preprocessing=pre, postprocessing=post,
            state_dict=state, architecture=arch, architecture_callable="UNetArch",
            architecture_kwargs=unet.model_dump(mode="json"),
            torchscript=_torchscript(ex, _normalised(ex, test_image), folder / "weights.torchscript"),
            test_input=test_image[None], test_output=output[None],
            cover=cover_image(ex.task, test_image, output), documentation=_card(ex),
            pytorch_version=torch.__version__, authors=authors or ["cellsight developers"],
            license=license, training_data=_training_text(ex.meta),
            attachments={CONFIG_ATTACHMENT: folder / CONFIG_ATTACHMENT,
                         META_ATTACHMENT: folder / META_ATTACHMENT},
            cellsight=extra, version=version or "1.0", tags=_tags(ex),
            version_comment=str(extra.get("version_comment", "")),
        )
        return write_package(parts, out)


def _tags(ex: Exportable) -> list[str]:
    base = ["cellsight", "unet", f"{ex.net.config.ndim}d", "pytorch"]
    return base + {"semantic": ["semantic-segmentation"],
                   "instance": ["instance-segmentation", "nuclei"],
                   "n2v": ["denoising", "n2v"]}[ex.task]


def _check_test_image(image: np.ndarray, unet, min_size: int) -> np.ndarray:
    want = unet.ndim + 1
    if image.ndim != want or image.shape[0] != unet.in_channels:
        raise ValueError(f"The test image must be (C, {'Z, ' if unet.ndim == 3 else ''}Y, X) with "
                         f"C = {unet.in_channels}; got shape {image.shape}.")
    step = 2**unet.depth
    bad = [s for s in image.shape[1:] if s < min_size or (s - min_size) % step]
    if bad:
        raise ValueError(f"Test image sizes {image.shape[1:]} must be {min_size} + n x {step}.")
    return image
