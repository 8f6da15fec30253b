"""Write a bioimage.io model package (format 0.5) built with ``bioimageio.spec``.

:func:`write_package` takes a :class:`PackageParts` (what the package holds, as plain
arrays, files and dicts), builds the ``ModelDescr`` and saves the zip under a temporary
name that is renamed into place when complete.
"""

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cellsight.io.atomic import atomic_path
from cellsight.io.bmz import CONFIG_KEY


@dataclass
class PackageParts:
    """Everything a package holds; :func:`write_package` turns it into a ``ModelDescr``.

    Attributes
    ----------
    name, description : str
        Title and one-line summary.
    spatial_axes : str
        ``"yx"`` or ``"zyx"``.
    input_channels, output_channels : list of str
        Channel names of the input and the output tensor.
    min_size, step, halo : int
        Valid spatial sizes are ``min_size + n * step``; ``halo`` pixels of every output
        border are to be cropped when tiling.
    preprocessing, postprocessing : list of dict
        Processing steps as in the spec (``{"id": "scale_range", "kwargs": {...}}``).
    state_dict : Path
        ``pytorch_state_dict`` weights; ``architecture`` is the source file,
        ``architecture_callable`` / ``architecture_kwargs`` what to call in it.
    torchscript : Path or None
        Optional TorchScript weights.
    test_input, test_output : numpy.ndarray
        Test tensors with the axes ``(batch, channel, *spatial)``.
    cover : numpy.ndarray
        RGB ``uint8`` picture (2:1 is what bioimage.io shows best).
    documentation : str
        Markdown text (the model card).
    authors : list of str
    license : str
        SPDX identifier.
    training_data : str
        What the model was trained on (one paragraph).
    attachments : dict of str to Path
        Extra files by their name in the package (cellsight's config.yaml, meta.json).
    cellsight : dict
        Stored under ``config.cellsight`` (task, parent, fine-tuning...).
    version : str
    version_comment : str
    tags : list of str
    pytorch_version : str
    """

    name: str
    description: str
    spatial_axes: str
    input_channels: list[str]
    output_channels: list[str]
    min_size: int
    step: int
    halo: int
    preprocessing: list[dict]
    postprocessing: list[dict]
    state_dict: Path
    architecture: Path
    architecture_callable: str
    architecture_kwargs: dict[str, Any]
    test_input: np.ndarray
    test_output: np.ndarray
    cover: np.ndarray
    documentation: str
    pytorch_version: str
    torchscript: Path | None = None
    authors: list[str] = field(default_factory=lambda: ["cellsight developers"])
    license: str = "BSD-3-Clause"
    training_data: str = ""
    attachments: dict[str, Path] = field(default_factory=dict)
    cellsight: dict[str, Any] = field(default_factory=dict)
    version: str = "1.0"
    version_comment: str = ""
    tags: list[str] = field(default_factory=list)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file(path: Path, **extra):
    from bioimageio.spec.model.v0_5 import FileDescr

    return dict(source=path, sha256=sha256_of(path), **extra) if extra else FileDescr(
        source=path, sha256=sha256_of(path))


def _axes(parts: PackageParts, channels: list[str], output: bool):
    from bioimageio.spec.model.v0_5 import (
        AxisId,
        BatchAxis,
        ChannelAxis,
        ParameterizedSize,
        SizeReference,
        SpaceInputAxis,
        SpaceOutputAxisWithHalo,
        TensorId,
    )

    axes: list = [BatchAxis(), ChannelAxis(channel_names=list(channels))]
    for a in parts.spatial_axes:
        if output:
            ref = SizeReference(tensor_id=TensorId("input"), axis_id=AxisId(a))
            axes.append(SpaceOutputAxisWithHalo(id=AxisId(a), halo=parts.halo, size=ref))
        else:
            size = ParameterizedSize(min=parts.min_size, step=parts.step)
            axes.append(SpaceInputAxis(id=AxisId(a), size=size))
    return axes


def _tensors(parts: PackageParts, folder: Path):
    from bioimageio.spec.model.v0_5 import (
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        OutputTensorDescr,
        TensorId,
    )

    np.save(folder / "test_input.npy", parts.test_input.astype(np.float32))
    np.save(folder / "test_output.npy", parts.test_output.astype(np.float32))
    data = IntervalOrRatioDataDescr(type="float32")
    inp = InputTensorDescr(
        id=TensorId("input"), axes=_axes(parts, parts.input_channels, False),
        test_tensor=_file(folder / "test_input.npy"), data=data,
        preprocessing=parts.preprocessing, description="raw image",
    )
    out = OutputTensorDescr(
        id=TensorId("output"), axes=_axes(parts, parts.output_channels, True),
        test_tensor=_file(folder / "test_output.npy"), data=data,
        postprocessing=parts.postprocessing, description=parts.cellsight.get("output", ""),
    )
    return [inp], [out]


def _weights(parts: PackageParts):
    from bioimageio.spec.model.v0_5 import (
        ArchitectureFromFileDescr,
        PytorchStateDictWeightsDescr,
        TorchscriptWeightsDescr,
        Version,
        WeightsDescr,
    )

    arch = ArchitectureFromFileDescr(
        source=parts.architecture, sha256=sha256_of(parts.architecture),
        callable=parts.architecture_callable, kwargs=parts.architecture_kwargs,
    )
    version = Version(parts.pytorch_version.split("+")[0])
    state = PytorchStateDictWeightsDescr(
        source=parts.state_dict, sha256=sha256_of(parts.state_dict), architecture=arch,
        pytorch_version=version,
    )
    script = None
    if parts.torchscript is not None:
        script = TorchscriptWeightsDescr(
            source=parts.torchscript, sha256=sha256_of(parts.torchscript),
            pytorch_version=version, parent="pytorch_state_dict",
        )
    return WeightsDescr(pytorch_state_dict=state, torchscript=script)


def _training_data(parts: PackageParts):
    from bioimageio.spec.dataset.v0_3 import DatasetDescr

    if not parts.training_data:
        return None
    return DatasetDescr(
        name=f"{parts.name} training data"[:128], description=parts.training_data[:1024],
        authors=[{"name": a} for a in parts.authors], license=parts.license,
        format_version="0.3.0", type="dataset",
    )


def _cover(parts: PackageParts, folder: Path) -> Path:
    import imageio.v3 as iio

    path = folder / "cover.png"
    iio.imwrite(path, np.asarray(parts.cover, np.uint8))
    return path


def build_description(parts: PackageParts, folder: Path):
    """The ``ModelDescr`` of ``parts``; its files are written into ``folder`` first.

    Raises
    ------
    ValueError
        If bioimageio.spec refuses the description (its first error, on one line).
    """
    from bioimageio.spec.model.v0_5 import Author, FileDescr, ModelDescr
    from pydantic import ValidationError

    (folder / "README.md").write_text(parts.documentation)
    inputs, outputs = _tensors(parts, folder)
    try:
        return ModelDescr(
            name=parts.name, description=parts.description,
            authors=[Author(name=a) for a in parts.authors], license=parts.license,
            documentation=_file(folder / "README.md"), covers=[_file(_cover(parts, folder))],
            inputs=inputs, outputs=outputs, weights=_weights(parts),
            attachments=[FileDescr(source=p, sha256=sha256_of(p))
                         for p in parts.attachments.values()],
            training_data=_training_data(parts), tags=parts.tags, version=parts.version,
            version_comment=parts.version_comment or None,
            config={CONFIG_KEY: parts.cellsight},
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        if where.startswith("license"):
            raise ValueError(f"{first.get('input')!r} is not an SPDX licence id that "
                             "bioimage.io accepts (e.g. MIT, BSD-3-Clause, CC-BY-4.0, "
                             "Apache-2.0).") from exc
        message = first["msg"]
        if len(message) > 200:  # enumerations of allowed values: not for one line
            message = message[:200] + "..."
        raise ValueError(f"Not a valid bioimage.io description: {where}: {message}") from exc


def write_package(parts: PackageParts, out: str | os.PathLike) -> Path:
    """Write ``parts`` as a bioimage.io model package zip at ``out`` (atomic).

    Returns
    -------
    pathlib.Path
        The zip.
    """
    from bioimageio.spec import save_bioimageio_package

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="cellsight-bmz-") as tmp:
        folder = Path(tmp)
        for name, path in parts.attachments.items():  # attachments keep their own names
            target = folder / name
            target.write_bytes(Path(path).read_bytes())
            parts.attachments[name] = target
        descr = build_description(parts, folder)
        with atomic_path(out) as part:
            staged = part.with_name(part.name + ".zip")  # the spec wants a .zip name
            try:
                save_bioimageio_package(descr, output_path=staged)
                os.replace(staged, part)
            finally:
                staged.unlink(missing_ok=True)
    return out
