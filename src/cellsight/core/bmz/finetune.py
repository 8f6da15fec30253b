"""Fine-tune a bioimage.io package written by another tool, and write it as a new version.

Packages cellsight exported are fine-tuned as cellsight's own models
(:func:`cellsight.core.curation.finetune.fine_tune`). Any other package whose output
cellsight reads as class probabilities (semantic) or foreground / boundary (instances) is
fine-tuned here, on its own network (TorchScript, or the state dict with its
architecture when trusted):

* the corrected labels become per-pixel targets of the package's output channels
  (semantic: classes 1..K -> channels 0..K-1, 0 = not annotated; instances: background /
  interior / boundary for three softmax channels, foreground (+ boundary) for sigmoid
  outputs), learned from the network's raw output (the package's softmax / sigmoid is
  its postprocessing) with cross-entropy;
* inputs are preprocessed with the package's own preprocessing, patches padded to the
  package's valid sizes; batch-norm statistics stay as they were;
* part of the corrections is held out as in :func:`split_holdout`; the old and the new
  network are scored on it (instances: AP@0.5; semantic: mean IoU over the classes);
* the new package is the old one with new weights, a new test output, version + 1, and
  ``config.cellsight.parent`` (name, version, sha256) and ``config.cellsight.fine_tune``
  (steps, data, held-out scores); it is validated and written with bioimageio.spec.
"""

import copy
import hashlib
import io
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from cellsight.config.finetune import FineTuneConfig
from cellsight.core.bmz.run import PackageModel, _DescribedOrder, load_package, predict_package
from cellsight.core.progress import (
    Cancelled,
    ProgressCallback,
    ProgressEvent,
    StopCallback,
    never_stop,
    no_progress,
)


@dataclass
class PackageFineTuneResult:
    """What fine-tuning a package produced.

    Attributes
    ----------
    package : pathlib.Path or None
        The new package (None when not written).
    kind : str
        ``semantic`` or ``instance``.
    metric : str
        ``AP@0.5`` (instances) or ``mean IoU`` (semantic).
    before, after : float
        The score of the old and the new network on the held-out corrections.
    held_out : str
    steps_done : int
    seconds : float
    message : str
    """

    package: Path | None
    kind: str
    metric: str
    before: float
    after: float
    held_out: str
    steps_done: int
    seconds: float
    message: str


def _frames(model: PackageModel, images, labels, seed: int, fraction: float):
    from cellsight.core.curation.correction_data import (
        CorrectionFrame,
        correction_frames,
        split_holdout,
    )

    images = [np.asarray(i) for i in (images if isinstance(images, list | tuple) else [images])]
    labels = [np.asarray(lb) for lb in (labels if isinstance(labels, list | tuple) else [labels])]
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label images.")
    ndim = len(model.spatial)
    if model.kind == "instance":
        frames = correction_frames(images, labels, ndim)
    else:
        frames = []
        for k, (img, lab) in enumerate(zip(images, labels, strict=True)):
            if img.shape != lab.shape:
                raise ValueError(f"Image {k + 1} {img.shape} and its labels {lab.shape} differ.")
            stack = img.reshape(-1, *img.shape[-ndim:])
            for t, (i, lb) in enumerate(zip(stack, lab.reshape(stack.shape), strict=True)):
                if (lb > 0).any():
                    frames.append(CorrectionFrame(i, lb.astype(np.int64), lb > 0,
                                                  f"image {k + 1}, frame {t + 1}"))
    if not frames:
        raise ValueError("No labelled pixels to fine-tune on.")
    return split_holdout(frames, fraction, seed)


def _targets(model: PackageModel, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-pixel targets ``(K, *spatial)`` of the output channels and a weight channel."""
    out_channels = _out_channels(model)
    if model.kind == "semantic":
        classes = np.where(mask, labels, 0)
        if classes.max() > out_channels:
            raise ValueError(f"The labels hold class {int(classes.max())}; the package "
                             f"outputs {out_channels} classes (labels 1..{out_channels}).")
        return classes.astype(np.int64)[None]  # 0 = ignore, k = channel k - 1
    from cellsight.core.segmentation.instance_targets import instance_targets

    return instance_targets(labels, annotated=mask).astype(np.int64)[None]  # 0 ign, 1 bg...


def _out_channels(model: PackageModel) -> int:
    for a in model.output.axes:
        if a.type == "channel":
            return len(a.channel_names)
    return 1


def _activation(model: PackageModel) -> str:
    ops = [p.id for p in model.output.postprocessing if p.id != "ensure_dtype"]
    return ops[-1] if ops and ops[-1] in ("softmax", "sigmoid") else "none"


def _loss(model: PackageModel, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the raw output against ``target`` (0 = ignore)."""
    act = _activation(model)
    t = target[:, 0]
    if model.kind == "semantic" or raw.shape[1] == 3:  # classes / bg-interior-boundary
        logits = raw if act == "softmax" else torch.log(raw.clamp_min(1e-6))
        return torch.nn.functional.cross_entropy(logits, t - 1, ignore_index=-1)
    keep = t > 0
    goal = [(t >= 2).float(), (t == 3).float()][: raw.shape[1]]
    total = raw.new_zeros(())
    for c, want in enumerate(goal):
        if act == "sigmoid":
            term = torch.nn.functional.binary_cross_entropy_with_logits(
                raw[:, c], want, reduction="none")
        else:
            term = torch.nn.functional.binary_cross_entropy(
                raw[:, c].clamp(1e-6, 1 - 1e-6), want, reduction="none")
        total = total + (term * keep).sum() / keep.sum().clamp_min(1)
    return total


def _preprocessed(model: PackageModel, image: np.ndarray) -> np.ndarray:
    """``(C, *spatial)`` input after the package's preprocessing."""
    from bioimageio.core.proc_setup import get_pre_and_postprocessing

    from cellsight.core.bmz.run import _dims, _from_tensor, _sample, _to_described
    from cellsight.core.bmz.run import _frames as frames_of

    procs = get_pre_and_postprocessing(model.package.descr, dataset_for_initial_statistics=[])
    frame = frames_of(model, image, None)[0][0]
    in_id = str(model.input.id)
    sample = _sample(in_id, _to_described(model, frame), _dims(model.input.axes))
    procs.pre(sample)
    return _from_tensor(sample.members[in_id], model.spatial)


def _patch_size(model: PackageModel, wanted: int) -> list[int]:
    sizes = []
    for a in (ax for ax in model.input.axes if ax.type == "space"):
        s = a.size
        if isinstance(s, int):
            sizes.append(s)
        elif hasattr(s, "step"):
            n = max(0, -(-(wanted - s.min) // s.step)) if s.step else 0
            sizes.append(s.min + n * s.step)
        else:
            sizes.append(wanted)
    return sizes


def _batches(xs, ts, size: list[int], batch: int, rng):
    """Random patches (padded where the frame is smaller), random flips."""
    xb, tb = [], []
    for _ in range(batch):
        k = int(rng.integers(len(xs)))
        x, t = xs[k], ts[k]
        pad = [(0, max(0, s - d)) for s, d in zip(size, x.shape[1:], strict=True)]
        if any(p for _, p in pad):
            x = np.pad(x, [(0, 0), *pad], mode="reflect" if all(
                p < d for (_, p), d in zip(pad, x.shape[1:], strict=True)) else "edge")
            t = np.pad(t, [(0, 0), *pad])  # padded pixels are ignored
        starts = [int(rng.integers(d - s + 1)) for s, d in zip(size, x.shape[1:], strict=True)]
        sl = (slice(None), *(slice(b, b + s) for b, s in zip(starts, size, strict=True)))
        px, pt = x[sl], t[sl]
        for ax in range(1, px.ndim):
            if rng.random() < 0.5:
                px, pt = np.flip(px, ax), np.flip(pt, ax)
        xb.append(np.ascontiguousarray(px))
        tb.append(np.ascontiguousarray(pt))
    return torch.from_numpy(np.stack(xb)), torch.from_numpy(np.stack(tb))


def _score(model: PackageModel, frames, device: str, should_stop) -> float:
    from cellsight.core.curation.correction_data import score_frames

    if model.kind == "instance":
        def segment(image):
            return predict_package(model, image, device=device, should_stop=should_stop).labels

        return float(score_frames(frames, segment).ap)
    inter = np.zeros(_out_channels(model))
    union = np.zeros(_out_channels(model))
    for f in frames:
        pred = predict_package(model, f.image, device=device, should_stop=should_stop).labels
        for c in range(len(inter)):
            p, t = (pred == c + 1) & f.mask, (f.labels == c + 1) & f.mask
            inter[c] += (p & t).sum()
            union[c] += (p | t).sum()
    seen = union > 0
    return float((inter[seen] / union[seen]).mean()) if seen.any() else 0.0


def _freeze_norm_statistics(net: torch.nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def fine_tune_package(
    images,
    labels,
    config: FineTuneConfig | None = None,
    *,
    package: str | os.PathLike,
    trust: bool = False,
    out: str | os.PathLike | None = None,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> PackageFineTuneResult:
    """Fine-tune a package from another tool on corrected labels; write a new version.

    Parameters
    ----------
    images, labels : array or sequence of arrays
        Images and their corrected labels (instance labels, or classes 1..K with 0 = not
        annotated for semantic packages).
    config : FineTuneConfig, optional
        Steps, learning rate, batch and patch size, held-out share, seed, device.
    package : path
        The package (zip, or folder with ``rdf.yaml``).
    trust : bool
        Allow the package's architecture file to run (state-dict-only packages).
    out : path, optional
        The new package (zip; must not exist). None: nothing is written.
    progress, should_stop : callable
        A stop ends training early and raises
        :class:`~cellsight.core.progress.Cancelled`; nothing is written then.

    Returns
    -------
    PackageFineTuneResult

    Raises
    ------
    ValueError
        If the package's output is not class probabilities or foreground / boundary,
        its network cannot be trained (onnx), or there is nothing to learn from.

    Examples
    --------
    Two corrected images, a few steps, a new package version (real runs: hundreds of steps):

    >>> import os, tempfile
    >>> from cellsight.core.bmz.export import export_package
    >>> folder = tempfile.mkdtemp()
    >>> package = export_package("nuclei", os.path.join(folder, "nuclei.zip"),
    ...                          test_image=np.random.rand(1, 96, 96))
    >>> yy, xx = np.mgrid[:96, :96]
    >>> labels = (((yy - 30) ** 2 + (xx - 30) ** 2 < 121)
    ...           + 2 * ((yy - 64) ** 2 + (xx - 62) ** 2 < 121)).astype(np.uint16)
    >>> images = [(labels > 0).astype(np.float32)] * 2
    >>> result = fine_tune_package(images, [labels] * 2, FineTuneConfig(steps=2, patch_size=64),
    ...                            package=package, out=os.path.join(folder, "nuclei_v2.zip"))
    >>> result.kind, result.metric, result.package.name
    ('instance', 'AP@0.5', 'nuclei_v2.zip')
    """
    config = config or FineTuneConfig()
    if out is not None and Path(out).exists():
        raise ValueError(f"{out} exists; fine-tuning writes a new package.")
    model = load_package(package, trust=trust, prefer_cellsight=False)
    if not isinstance(model, PackageModel):
        raise ValueError(f"{package} was written by cellsight: fine-tune it with "
                         "cellsight.core.curation.finetune.fine_tune.")
    if model.kind not in ("semantic", "instance"):
        raise ValueError(f"{package} outputs {model.kind} data; cellsight fine-tunes packages "
                         "whose output is class probabilities or foreground / boundary.")
    if not isinstance(model.net, torch.nn.Module):
        raise ValueError(f"{package}: {model.weights} weights cannot be trained; cellsight "
                         "fine-tunes torchscript or pytorch_state_dict weights.")
    train, held, held_text = _frames(model, images, labels, config.seed, config.holdout_fraction)
    metric = "AP@0.5" if model.kind == "instance" else "mean IoU"
    progress(ProgressEvent(0, config.steps, "checking the package on held-out corrections"))
    from cellsight.core.nn.device import select_device

    dev = select_device(config.device)
    before = _score(model, held, config.device, should_stop)
    xs = [_preprocessed(model, f.image) for f in train]
    ts = [_targets(model, f.labels, f.mask) for f in train]
    size = _patch_size(model, config.patch_size)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    original = copy.deepcopy(model.net.state_dict())
    adapter = _DescribedOrder(model).to(dev)
    params = [p for p in model.net.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=config.learning_rate)
    began, step = time.perf_counter(), 0
    limit = config.time_limit_minutes * 60 if config.time_limit_minutes else float("inf")
    model.net.train()
    _freeze_norm_statistics(model.net)
    try:
        for step in range(1, config.steps + 1):
            if should_stop():
                raise Cancelled("Fine-tuning stopped; nothing was written.", partial=None)
            x, t = _batches(xs, ts, size, config.batch_size, rng)
            loss = _loss(model, adapter(x.to(dev)), t.to(dev))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            progress(ProgressEvent(step, config.steps, "fine-tuning",
                                   {"loss": float(loss.detach())}))
            if time.perf_counter() - began > limit:
                break
    finally:
        model.net.eval()
        model.net.to("cpu")
    seconds = round(time.perf_counter() - began, 1)
    progress(ProgressEvent(config.steps, config.steps, "checking the new network"))
    after = _score(model, held, config.device, should_stop)
    data = f"{len(train)} corrected frame(s) ({', '.join(f.name for f in train)})"
    tune = {"steps": step, "data": data, "held_out": held_text, "metric": metric,
            "before": round(before, 4), "after": round(after, 4),
            "kept": "new" if after >= before else "old"}
    written = None
    if out is not None:
        written = write_version(model, Path(out), tune)
    verdict = "" if after >= before else (": the fine-tuned package is WORSE on the "
                                           "held-out corrections; keep using the original")
    message = (f"{metric} on held-out corrections: {before:.2f} -> {after:.2f}{verdict}"
               + (f" (new version written to {written})" if written else ""))
    if after < before and written is None:
        model.net.load_state_dict(original)
    return PackageFineTuneResult(written, model.kind, metric, before, after, held_text, step,
                                 seconds, message)


def _next_version(version) -> str:
    from cellsight.core.bmz.export import next_version

    return next_version(str(version) if version else None)


def write_version(model: PackageModel, out: Path, tune: dict) -> Path:
    """The package with the model's current weights as a new version (see module doc).

    Raises
    ------
    ValueError
        If the package is not format 0.5, or the result does not validate.
    """
    from bioimageio.spec import InvalidDescr, load_description, save_bioimageio_package

    from cellsight.core.bmz.run import package_record
    from cellsight.io.bmz.read import file_name

    package = model.package
    record = package_record(package)
    descr = package.descr
    with tempfile.TemporaryDirectory(prefix="cellsight-ft-package-") as tmp:
        folder = Path(tmp)
        _extract(package.path, folder)
        rdf_path = next(p for p in (folder / "rdf.yaml", folder / "bioimageio.yaml")
                        if p.is_file())
        rdf = yaml.safe_load(rdf_path.read_text())
        if not str(rdf.get("format_version", "")).startswith("0.5"):
            raise ValueError(f"{package.path} is format {rdf.get('format_version')}; writing "
                             "a fine-tuned version needs a format 0.5 package.")
        weights = rdf["weights"]
        net = model.net
        if model.weights == "torchscript":
            name = "weights_finetuned.torchscript"
            torch.jit.save(net, str(folder / name))
            weights = {"torchscript": {**weights["torchscript"], "source": name,
                                       "sha256": _sha(folder / name)}}
            weights["torchscript"].pop("parent", None)
        else:
            name = "weights_finetuned.pt"
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / name)
            weights = {"pytorch_state_dict": {**weights["pytorch_state_dict"], "source": name,
                                              "sha256": _sha(folder / name)}}
        rdf["weights"] = weights  # the other formats hold the old network: left out
        test_input = np.load(io.BytesIO(package.read_bytes(descr.inputs[0].test_tensor)))
        result = predict_package(model, _test_image(model, test_input), device="cpu")
        test_out = result.output[None] if result.output.ndim == len(model.spatial) + 1 else (
            result.output)
        expected = np.load(io.BytesIO(package.read_bytes(descr.outputs[0].test_tensor))).shape
        np.save(folder / "test_output_finetuned.npy", test_out.reshape(expected).astype(
            np.float32))
        rdf["outputs"][0]["test_tensor"] = {"source": "test_output_finetuned.npy",
                                            "sha256": _sha(folder / "test_output_finetuned.npy")}
        old_version = rdf.get("version") or descr.version
        rdf["version"] = _next_version(old_version)
        parent = {"name": record["name"], "version": record["version"], "id": record["id"],
                  "sha256": record.get("sha256")}
        rdf["version_comment"] = (f"fine-tuned by cellsight from {parent['name']} "
                                  f"{parent['version']} for {tune['steps']} steps on "
                                  f"{tune['data']}; {tune['metric']} on held-out corrections "
                                  f"({tune['held_out']}): {tune['before']} -> {tune['after']}")
        rdf.setdefault("config", {})
        rdf["config"] = dict(rdf["config"] or {})
        rdf["config"]["cellsight"] = {"parent": parent, "fine_tune": tune}
        for stale in ("id", "id_emoji", "uploader"):
            rdf.pop(stale, None)
        rdf_path.write_text(yaml.safe_dump(rdf, sort_keys=False))
        for old in {file_name(descr.outputs[0].test_tensor)} - {"test_output_finetuned.npy"}:
            (folder / old).unlink(missing_ok=True)
        new = load_description(rdf_path, format_version="latest", perform_io_checks=True)
        if isinstance(new, InvalidDescr):
            raise ValueError(f"The fine-tuned package does not validate: "
                             f"{new.validation_summary.details[-1].errors[:1]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_bioimageio_package(new, output_path=out)
    return out


def _test_image(model: PackageModel, test_input: np.ndarray) -> np.ndarray:
    """The package's test input (described axes) as the image predict_package takes."""
    from bioimageio.core import Tensor

    from cellsight.core.bmz.run import _dims, _from_tensor

    arr = _from_tensor(Tensor.from_numpy(test_input, dims=_dims(model.input.axes)),
                       model.spatial)
    return arr if model.channels > 1 else arr[0]


def _extract(path: Path, folder: Path) -> None:
    if path.is_dir():
        import shutil

        shutil.copytree(path, folder, dirs_exist_ok=True)
        return
    with zipfile.ZipFile(path) as z:
        z.extractall(folder)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
