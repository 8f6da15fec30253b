"""Run a bioimage.io model package with cellsight: tiled, and mapped to what cellsight shows.

:func:`load_package` gives cellsight's own model back for packages cellsight exported
(their attached config and the state dict in cellsight's U-Net: no package code runs,
an exact round trip), and a :class:`PackageModel` for any other package.
:func:`predict_package` applies the package's declared preprocessing (with
bioimageio.core's own operators), runs the network through
:func:`cellsight.core.nn.tiling.predict_tiled` (padding every tile to a valid size,
overlapping tiles by twice the declared halo), applies the postprocessing and maps the
output: class probabilities -> semantic labels, foreground (+ boundary) -> instances by
the seeded watershed, an image like the input -> a denoised image, anything else -> a raw
array.
"""

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import yaml

from cellsight.config.instances import InstancePostConfig
from cellsight.core.nn.tiling import predict_tiled, tile_shape_for
from cellsight.core.progress import ProgressCallback, StopCallback, never_stop, no_progress
from cellsight.io.bmz.read import Package, load_network, open_package

KINDS = ("semantic", "instance", "image", "raw")


@dataclass
class PackageModel:
    """A package's network with what cellsight needs to run it.

    Attributes
    ----------
    package : Package
    net : torch.nn.Module or OnnxNetwork
    weights : str
        The weights format loaded.
    kind : str
        How the output is read: ``semantic``, ``instance``, ``image`` or ``raw``.
    """

    package: Package
    net: Any
    weights: str
    kind: str
    meta: dict = field(default_factory=dict)

    @property
    def input(self):
        """The (single) input tensor description."""
        return self.package.descr.inputs[0]

    @property
    def output(self):
        """The first output tensor description."""
        return self.package.descr.outputs[0]

    @property
    def spatial(self) -> str:
        """The input's spatial axes in cellsight's order (``"yx"`` or ``"zyx"``)."""
        ids = {str(a.id) for a in self.input.axes if a.type == "space"}
        return "".join(a for a in "zyx" if a in ids)

    @property
    def channels(self) -> int:
        """Input channels (1 when the input has no channel axis)."""
        for a in self.input.axes:
            if a.type == "channel":
                return len(a.channel_names)
        return 1


@dataclass
class PackageResult:
    """What a package made of an image.

    Attributes
    ----------
    kind : str
        ``semantic``, ``instance``, ``image`` or ``raw``.
    output : numpy.ndarray
        The postprocessed output, ``([T,] C, *spatial)`` float32.
    labels : numpy.ndarray or None
        Semantic or instance labels ``([T,] *spatial)``.
    image : numpy.ndarray or None
        The denoised (restored) image, shaped like the input.
    """

    kind: str
    output: np.ndarray
    labels: np.ndarray | None = None
    image: np.ndarray | None = None


def _names(axis) -> list[str]:
    return [str(n).lower() for n in getattr(axis, "channel_names", [])]


def output_kind(package: Package) -> str:
    """How cellsight reads the package's first output (see :data:`KINDS`)."""
    task = package.cellsight.get("task")
    if task in ("semantic", "instance"):
        return task
    if task == "n2v":
        return "image"
    out, inp = package.descr.outputs[0], package.descr.inputs[0]
    ops = [p.id for p in out.postprocessing if p.id != "ensure_dtype"]
    channel = next((a for a in out.axes if a.type == "channel"), None)
    names = _names(channel) if channel else []
    if ops and ops[-1] == "softmax":
        return "instance" if len(names) == 3 and "boundary" in names[2] else "semantic"
    if ops and ops[-1] == "sigmoid" and (len(names) <= 1 or any("boundary" in n for n in names)):
        return "instance"
    in_channel = next((a for a in inp.axes if a.type == "channel"), None)
    same_channels = len(names) == (len(_names(in_channel)) if in_channel else 0)
    same_space = [str(a.id) for a in out.axes if a.type == "space"] == [
        str(a.id) for a in inp.axes if a.type == "space"]
    return "image" if same_channels and same_space else "raw"


def _native(package: Package):
    """cellsight's own model from a package cellsight exported, or None for other packages."""
    info = package.cellsight
    data = package.attachment(str(info.get("config_attachment", "")))
    if not data or info.get("task") not in ("semantic", "instance", "n2v"):
        return None
    import io

    from cellsight.core.nn.unet import UNet

    config = yaml.safe_load(data)
    entry = package.descr.weights.pytorch_state_dict
    if entry is None:
        return None
    state = torch.load(io.BytesIO(package.read_bytes(entry)), map_location="cpu",
                       weights_only=True)
    meta_bytes = package.attachment(str(info.get("meta_attachment", "")))
    import json

    meta = json.loads(meta_bytes) if meta_bytes else {}
    meta["package"] = package_record(package)
    if config["task"] == "n2v":
        from cellsight.config.n2v import N2VConfig
        from cellsight.config.unet import UNetConfig
        from cellsight.core.denoise.model import N2VModel

        net = UNet(UNetConfig.model_validate(config["unet"]))
        net.load_state_dict(state)
        norm = config["normalisation"]
        return N2VModel(net.eval(), N2VConfig.model_validate(config["n2v"]),
                        tuple(norm["mean"]), tuple(norm["std"]), meta)
    if config["task"] == "instance":
        from cellsight.config.instances import InstanceConfig as cfg_cls
        from cellsight.core.segmentation.instance_model import InstanceModel as cls
    else:
        from cellsight.config.semantic import SemanticConfig as cfg_cls
        from cellsight.core.segmentation.semantic import SemanticModel as cls
    cfg = cfg_cls.model_validate(config)
    net = UNet(cfg.unet)
    net.load_state_dict(state)
    return cls(config=cfg, net=net.eval(), meta=meta)


def native_of(path: str | os.PathLike, cls):
    """cellsight's own model of class ``cls`` from a package cellsight exported.

    Raises
    ------
    ValueError
        If the package was not written by cellsight, or holds another kind of model.
    """
    package = open_package(path)
    model = _native(package)
    if model is None:
        raise ValueError(f"{path} is a bioimage.io package from another tool; run it with "
                         "cellsight.core.bmz.run.load_package / predict_package.")
    if not isinstance(model, cls):
        raise ValueError(f"{path} holds a {package.cellsight.get('task')} model, not the "
                         f"{cls.__name__} needed here.")
    return model


def package_record(package: Package) -> dict:
    """Name, version, id and file of a package (kept in a fine-tuned model's metadata)."""
    import hashlib

    descr = package.descr
    record = {"name": descr.name, "version": str(descr.version) if descr.version else None,
              "id": str(descr.id) if descr.id else None, "path": str(package.path)}
    if package.path.is_file():
        record["sha256"] = hashlib.sha256(package.path.read_bytes()).hexdigest()
    return record


def load_package(path: str | os.PathLike, trust: bool = False, *, prefer_cellsight: bool = True,
                 weights: str | None = None):
    """Open a bioimage.io model package as something cellsight can run.

    Parameters
    ----------
    path : path
        A package zip, or a folder with ``rdf.yaml`` / ``bioimageio.yaml``.
    trust : bool
        Allow the package's architecture file (Python code) to run; needed only when
        the package has no TorchScript (or ONNX) weights.
    prefer_cellsight : bool
        For packages cellsight exported: return cellsight's own model (exact round
        trip, no package code runs).
    weights : str, optional
        Force a weights format (``torchscript``, ``pytorch_state_dict``, ``onnx``).

    Returns
    -------
    InstanceModel, SemanticModel, N2VModel or PackageModel

    Raises
    ------
    ValueError
        If the path is not a runnable model package, a file's sha256 differs from the
        description, or its code is not trusted (:class:`~cellsight.io.bmz.read.UntrustedCode`).

    Examples
    --------
    A package cellsight wrote comes back as cellsight's own model; any other package (or
    this one with ``prefer_cellsight=False``) as a :class:`PackageModel` that runs its
    TorchScript weights, with no package code executed:

    >>> import os, tempfile
    >>> from cellsight.core.bmz.export import export_package
    >>> path = export_package("nuclei", os.path.join(tempfile.mkdtemp(), "nuclei.zip"),
    ...                       test_image=np.random.rand(1, 96, 96))
    >>> type(load_package(path)).__name__
    'InstanceModel'
    >>> package = load_package(path, prefer_cellsight=False)
    >>> type(package).__name__, package.kind, package.weights
    ('PackageModel', 'instance', 'torchscript')
    """
    package = open_package(path)
    if prefer_cellsight and weights is None:
        native = _native(package)
        if native is not None:
            return native
    if len(package.descr.inputs) != 1:
        raise ValueError(f"{path} has {len(package.descr.inputs)} inputs; cellsight runs "
                         "packages with one input tensor.")
    if package.descr.inputs[0].axes[0].type != "batch":
        raise ValueError(f"{path}: the input's first axis is not a batch axis; cellsight runs "
                         "packages whose input starts with one.")
    net, fmt = load_network(package, trust, weights)
    return PackageModel(package, net, fmt, output_kind(package), {"package": package_record(package)})


def _valid(size: int, axis) -> int:
    """Smallest valid size >= ``size`` for an input axis description."""
    s = axis.size
    if isinstance(s, int):
        return s
    if hasattr(s, "step"):
        return s.min + max(0, math.ceil((size - s.min) / s.step)) * s.step
    return size


class _DescribedOrder(torch.nn.Module):
    """``(N, C, *spatial)`` in cellsight's order -> the package's axes, padded to valid sizes."""

    def __init__(self, model: PackageModel):
        super().__init__()
        self.inner = model.net if isinstance(model.net, torch.nn.Module) else None
        self.call = model.net
        self.model = model
        steps = [getattr(a.size, "step", 1) for a in model.input.axes if a.type == "space"]
        self.divisor = math.lcm(*steps) if steps else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the package's network on cellsight-ordered input; return ``(N, C, *spatial)``."""
        m, spatial = self.model, self.model.spatial
        sizes = tuple(x.shape[2:])
        axis_of = {str(a.id): a for a in m.input.axes if a.type == "space"}
        grow = [_valid(s, axis_of[a]) - s for a, s in zip(spatial, sizes, strict=True)]
        if any(g < 0 for g in grow):
            raise ValueError(f"A tile of {sizes} is larger than the package's fixed input size "
                             f"{tuple(s + g for s, g in zip(sizes, grow, strict=True))}.")
        if any(grow):
            mode = "reflect" if all(g < s for g, s in zip(grow, sizes, strict=True)) else "replicate"
            pad = [p for g in reversed(grow) for p in (0, g)]
            x = torch.nn.functional.pad(x, pad, mode=mode)
        types = [a.type for a in m.input.axes]
        cur = ["batch", "channel", *spatial]
        if "channel" not in types:
            x, cur = x[:, 0], ["batch", *spatial]
        target = [t if t in ("batch", "channel") else str(a.id)
                  for t, a in zip(types, m.input.axes, strict=True)]
        y = self.call(x.permute(*[cur.index(t) for t in target]))
        out_types = [a.type for a in m.output.axes]
        out = [t if t in ("batch", "channel") else str(a.id)
               for t, a in zip(out_types, m.output.axes, strict=True)]
        if "channel" not in out:
            y = y.unsqueeze(1)
            out = [out[0], "channel", *out[1:]]
        y = y.permute(*[out.index(t) for t in ("batch", "channel", *spatial)])
        return y[(slice(None), slice(None), *(slice(0, s) for s in sizes))]


def _dims(axes) -> list[str]:
    return [str(a.id) for a in axes]


def _frames(model: PackageModel, image: np.ndarray, axes: str | None):
    """Image as ``(frames, C, *spatial)``; whether it had a frame axis, a channel axis."""
    n = len(model.spatial)
    image = np.asarray(image, np.float32)
    if axes:
        axes = axes.upper()
        if len(axes) != image.ndim:
            raise ValueError(f"Axes {axes!r} do not fit an image of shape {image.shape}.")
        order = [axes.index(a) for a in "TC" if a in axes] + [axes.index(a) for a in "ZYX"
                                                              if a in axes]
        image = np.transpose(image, order)
        has_t, has_c = "T" in axes, "C" in axes
    else:
        has_c = image.ndim >= n + 1 and model.channels > 1 and image.shape[-n - 1] == model.channels
        has_t = image.ndim == n + 1 + has_c
    if image.ndim != n + has_t + has_c:
        raise ValueError(f"The package takes {n}D images ({model.spatial.upper()}); got shape "
                         f"{image.shape} (give the axes, e.g. 'TYX' or 'CYX').")
    if not has_c:
        image = np.expand_dims(image, 1 if has_t else 0)
    if not has_t:
        image = image[None]
    if image.shape[1] != model.channels:
        raise ValueError(f"The package takes {model.channels} channel(s); the image has "
                         f"{image.shape[1]}.")
    return image, has_t, has_c


def _sample(member: str, array: np.ndarray, dims: list[str]):
    from bioimageio.core import Sample, Tensor
    from bioimageio.spec.model.v0_5 import TensorId

    return Sample(members={TensorId(member): Tensor.from_numpy(array, dims=dims)}, stat={}, id=0)


def _to_described(model: PackageModel, frame: np.ndarray) -> np.ndarray:
    """``(C, *spatial zyx)`` -> the input's described axis order with a batch of 1."""
    shape_axes = ["channel"] + list(model.spatial)
    target = []
    for a in model.input.axes:
        target.append("batch" if a.type == "batch" else "channel" if a.type == "channel"
                      else str(a.id))
    arr = frame if "channel" in target else frame[0]
    have = [d for d in shape_axes if d in target]
    arr = np.transpose(arr, [have.index(d) for d in target if d != "batch"])
    return np.expand_dims(arr, target.index("batch")) if "batch" in target else arr


def _from_tensor(tensor, spatial: str) -> np.ndarray:
    data = tensor.data
    dims = [str(d) for d in data.dims]
    keep = [d for d in dims if d in ("channel",) or d in spatial]
    arr = data.transpose(*(d for d in dims if d not in keep), *keep).values
    arr = arr.reshape(arr.shape[-len(keep):])
    if "channel" not in keep:
        arr = arr[None]
    order = ["channel"] + [d for d in spatial if d in keep]
    cur = ["channel"] + [d for d in keep if d != "channel"]
    return np.transpose(arr, [cur.index(d) for d in order]).astype(np.float32)


def predict_package(
    model: PackageModel,
    image: np.ndarray,
    *,
    axes: str | None = None,
    tile_size: int = 0,
    device: str = "auto",
    post: InstancePostConfig | None = None,
    tta: bool = False,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
) -> PackageResult:
    """Run a package over an image of any size (tiled) and map its output.

    Parameters
    ----------
    model : PackageModel
    image : numpy.ndarray
        ``{Z}YX``, with a leading ``C`` and/or ``T`` axis (or give ``axes``). Not modified.
    axes : str, optional
        The image's axes in cellsight letters (``"YX"``, ``"CYX"``, ``"TYX"``...).
    tile_size, device : optional
        Largest tile edge (0 = default) and device, as for the other predictors.
    post : InstancePostConfig, optional
        Watershed parameters for foreground / boundary outputs.
    tta : bool
        Test-time augmentation: the network's output averaged over the 8 flips and
        quarter turns of the (pre-processed) image in the YX plane, each turned back.

    Returns
    -------
    PackageResult

    Examples
    --------
    The built-in model as a package: its foreground / boundary output becomes instances.

    >>> import os, tempfile
    >>> from cellsight.core.bmz.export import export_package
    >>> path = export_package("nuclei", os.path.join(tempfile.mkdtemp(), "nuclei.zip"),
    ...                       test_image=np.random.rand(1, 96, 96))
    >>> yy, xx = np.mgrid[:96, :96]
    >>> image = (((yy - 30) ** 2 + (xx - 30) ** 2 < 121)
    ...          | ((yy - 64) ** 2 + (xx - 62) ** 2 < 121)).astype(np.float32)
    >>> result = predict_package(load_package(path, prefer_cellsight=False), image)
    >>> result.kind, result.output.shape, int(result.labels.max())
    ('instance', (3, 96, 96), 2)
    """
    output, has_t, has_c = _predict_output(model, image, axes, tile_size, device, progress,
                                           should_stop, tta)
    return _mapped(model, output, has_t, has_c, post)


def predict_package_maps(
    model: PackageModel,
    image: np.ndarray,
    *,
    axes: str | None = None,
    tile_size: int = 0,
    device: str = "auto",
    tta: bool = False,
    progress: ProgressCallback = no_progress,
    should_stop: StopCallback = never_stop,
):
    """Foreground and boundary maps of a package with instance output (no watershed).

    ``tta`` as for :func:`predict_package`.

    Returns
    -------
    cellsight.core.segmentation.instance_model.InstanceMaps
        For :func:`~cellsight.core.segmentation.instance_model.instances_from_maps`, so
        the watershed can be re-run with other thresholds.
    """
    from cellsight.core.segmentation.instance_model import InstanceMaps

    if model.kind != "instance":
        raise ValueError(f"The package's output is {model.kind}, not foreground / boundary.")
    output, has_t, _ = _predict_output(model, image, axes, tile_size, device, progress,
                                       should_stop, tta)
    fg, bd = _instance_maps(output)
    return InstanceMaps(fg if has_t else fg[0], bd if has_t else bd[0], has_time=has_t)


def _instance_maps(output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and boundary ``(frames, *spatial)`` of an instance output."""
    if output.shape[1] == 3:  # background / interior / boundary
        return output[:, 1] + output[:, 2], output[:, 2]
    fg = output[:, 0]
    return fg, output[:, 1] if output.shape[1] > 1 else np.zeros_like(fg)


def augmented(run, x: np.ndarray, tta: bool) -> np.ndarray:
    """``run(x)``, or with ``tta`` its mean over the 8 flips / quarter turns of ``x``'s
    last two axes (YX), each output turned back (``x``: ``(C, *spatial)``)."""
    if not tta:
        return run(x)
    total = None
    for flip in (False, True):
        for turns in range(4):
            view = np.flip(x, -1) if flip else x
            y = run(np.ascontiguousarray(np.rot90(view, turns, axes=(-2, -1))))
            y = np.rot90(y, -turns, axes=(-2, -1))
            y = np.flip(y, -1) if flip else y
            total = y.astype(np.float32) if total is None else total + y
    return total / 8


def _predict_output(model, image, axes, tile_size, device, progress, should_stop,
                    tta: bool = False):
    """The postprocessed output ``(frames, C, *spatial)``; whether there were T and C axes."""
    from bioimageio.core.proc_setup import get_pre_and_postprocessing

    frames, has_t, has_c = _frames(model, image, axes)
    procs = get_pre_and_postprocessing(model.package.descr, dataset_for_initial_statistics=[])
    adapter = _DescribedOrder(model)
    in_id, out_id = str(model.input.id), str(model.output.id)
    halo = max([getattr(a, "halo", 0) for a in model.output.axes] + [0])
    pad_in, crop_out, mode = _halos(model)
    outputs = []
    for frame in frames:
        # as bioimageio.core does: pad by the halo before preprocessing, crop it after
        frame = np.pad(frame, [(0, 0), *pad_in], mode=mode)
        sample = _sample(in_id, _to_described(model, frame), _dims(model.input.axes))
        procs.pre(sample)
        x = _from_tensor(sample.members[in_id], model.spatial)
        tiles, overlap = _tiling(model, tile_size, halo, adapter.divisor)
        y = augmented(lambda v: predict_tiled(adapter, v, tile_shape=tiles, overlap=overlap,
                                              device=device, amp=False, progress=progress,
                                              should_stop=should_stop), x, tta)
        out_sample = _sample(out_id, _output_described(model, y), _dims(model.output.axes))
        out_sample.stat = sample.stat
        procs.post(out_sample)
        result = _from_tensor(out_sample.members[out_id], model.spatial)
        outputs.append(result[(slice(None), *(slice(lo, result.shape[i + 1] - hi)
                                             for i, (lo, hi) in enumerate(crop_out)))])
    return np.stack(outputs), has_t, has_c


def _tiling(model: PackageModel, tile_size: int, halo: int, divisor: int):
    """Tile shape and overlap for :func:`predict_tiled`.

    An axis of fixed size (``size: 64``, as CAREamics writes) gets tiles of that size
    (smaller ones are padded up to it) overlapping by a quarter; other axes take
    ``tile_size`` (or the default) and an overlap of twice the halo.
    """
    from cellsight.core.nn.tiling import DEFAULT_TILE, OVERLAP_PER_DIVISOR

    n = len(model.spatial)
    axis_of = {str(a.id): a for a in model.input.axes if a.type == "space"}
    fixed = [axis_of[a].size if isinstance(axis_of[a].size, int) else None
             for a in model.spatial]
    wanted = tile_shape_for(tile_size, n)
    if not any(fixed):
        overlap = max(2 * halo, OVERLAP_PER_DIVISOR * divisor) if halo else None
        return wanted, overlap
    base = wanted or DEFAULT_TILE.get(n, (256,) * n)
    tiles = tuple(f if f else b for f, b in zip(fixed, base, strict=True))
    overlap = tuple(max(2 * halo, f // 4) if f else max(2 * halo, OVERLAP_PER_DIVISOR * divisor)
                    for f in fixed)
    return tiles, overlap


def _halos(model: PackageModel):
    """Input padding and output cropping per spatial axis (cellsight order), pad mode."""
    from bioimageio.core.digest_spec import get_input_halo

    try:
        halo_in = get_input_halo(model.package.descr).get(model.input.id, {})
    except ValueError:
        halo_in = {}
    halo_out = {str(a.id): getattr(a, "halo", 0) for a in model.output.axes}
    by_id = {str(k): v for k, v in halo_in.items()}
    pad_in = [(by_id[a].left, by_id[a].right) if a in by_id else (0, 0) for a in model.spatial]
    crop_out = [(halo_out.get(a, 0),) * 2 if a in by_id else (0, 0) for a in model.spatial]
    pad = getattr(model.input, "pad", None)
    return pad_in, crop_out, getattr(pad, "mode", "symmetric")


def _output_described(model: PackageModel, y: np.ndarray) -> np.ndarray:
    dims = _dims(model.output.axes)
    types = [a.type for a in model.output.axes]
    cur = ["channel"] + list(model.spatial)
    arr = y if "channel" in types else y[0]
    if "channel" not in types:
        cur = cur[1:]
    arr = np.transpose(arr, [cur.index(d if t != "channel" else "channel")
                             for d, t in zip(dims, types, strict=True) if t != "batch"])
    return np.expand_dims(arr, types.index("batch")) if "batch" in types else arr


def _mapped(model, output, has_t, has_c, post) -> PackageResult:
    from cellsight.core.segmentation.watershed import watershed_instances

    def squeeze(a):
        return a if has_t else a[0]

    kind = model.kind
    if kind == "semantic":
        labels = (np.argmax(output, axis=1) + 1).astype(np.uint16)
        return PackageResult(kind, squeeze(output), labels=squeeze(labels))
    if kind == "instance":
        fg, bd = _instance_maps(output)
        labels = np.stack([watershed_instances(f, b, post) for f, b in zip(fg, bd, strict=True)])
        return PackageResult(kind, squeeze(output), labels=squeeze(labels))
    if kind == "image":
        img = output if has_c else output[:, 0]
        return PackageResult(kind, squeeze(output), image=squeeze(img))
    return PackageResult(kind, squeeze(output))
