"""Bundled sample data, hash-checked, returned as napari LayerData tuples.

The files live in ``sample_data/`` at the repository top level and are shipped in the
wheel as ``cellsight/sample_data``. Nothing here imports napari or Qt.
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One bundled file."""

    filename: str
    sha256: str
    layer_name: str
    layer_type: str  # "image" or "labels"
    axes: str = "YX"
    #: pixel size in micrometres where the source documents it (None: unknown, pixels)
    pixel_size: float | None = None


#: Fluo-N2DL-HeLa pixel size (Cell Tracking Challenge dataset description), micrometres
HELA_PIXEL_UM = 0.645

SAMPLES: dict[str, Sample] = {
    "nuclei_2d": Sample(
        "dsb2018_nuclei.tif",
        "dba4ad13be133a5c67be42f56ec06c858e5de9df202e1579242f9a7b07c899dd",
        "DSB2018 nuclei",
        "image",
    ),
    "nuclei_2d_masks": Sample(
        "dsb2018_nuclei_masks.tif",
        "b5945f581a1bc9c41ec2c57061296b719e62a5677e44a03294dd50b74218e87e",
        "DSB2018 nuclei masks",
        "labels",
    ),
    "hela_timelapse": Sample(
        "hela_timelapse.tif",
        "b4cea96f038404baa3dc1c562a853a0b81acb31a1bc6082c70d0800f523cfee1",
        "HeLa nuclei time-lapse",
        "image",
        "TYX",
        HELA_PIXEL_UM,
    ),
    "hela_timelapse_errseg": Sample(
        "hela_timelapse_errseg.tif",
        "2f37116a5306560bccc774cbb225e09ba173cdfc5c4c9f2f339a6b3607dcd08d",
        "HeLa imperfect segmentation",
        "labels",
        "TYX",
        HELA_PIXEL_UM,
    ),
    "w2s_noisy": Sample(
        "w2s_noisy.tif",
        "c0800f6aea02fdb924afd53bedf200896d6095c88991a37fa0254d3fa62906f1",
        "W2S noisy widefield",
        "image",
    ),
    "w2s_clean": Sample(
        "w2s_clean.tif",
        "bc41d91c1867bff297b73ca18d7f9ee266ca3c37750e585dd3b552d0be9d70c2",
        "W2S clean reference",
        "image",
    ),
}


def sample_dir() -> Path:
    """Folder holding the sample files (inside the wheel, or the source checkout)."""
    here = Path(__file__).resolve().parents[1]  # the cellsight package folder
    for candidate in (here / "sample_data", here.parents[1] / "sample_data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "cellsight's sample_data folder is missing from this installation "
        f"(looked in {here / 'sample_data'} and {here.parents[1] / 'sample_data'})."
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def sample_path(key: str) -> Path:
    """Path of sample ``key`` after checking its SHA-256 hash."""
    if key not in SAMPLES:
        raise KeyError(f"Unknown sample {key!r}; known: {', '.join(SAMPLES)}.")
    sample = SAMPLES[key]
    path = sample_dir() / sample.filename
    if not path.exists():
        raise FileNotFoundError(f"Sample file {path} is missing from this installation.")
    digest = _sha256(path)
    if digest != sample.sha256:
        raise ValueError(f"Sample file {path} is corrupted (sha256 {digest} != {sample.sha256}).")
    return path


def load_sample(key: str) -> np.ndarray:
    """Return the pixels of sample ``key`` as a numpy array."""
    from cellsight.io.tiff import read_image

    return read_image(sample_path(key)).data


def _layer(key: str) -> list[tuple]:
    sample = SAMPLES[key]
    spatial = [a in "ZYX" for a in sample.axes]
    size = sample.pixel_size
    meta = {
        "name": sample.layer_name,
        "metadata": {"axes": sample.axes},
        "axis_labels": [a.lower() for a in sample.axes],
        "scale": [size if (size and sp) else 1.0 for sp in spatial],
        "units": ["micrometer" if (size and sp) else "pixel" for sp in spatial],
    }
    if sample.layer_type == "image":
        meta["colormap"] = "gray"
    return [(load_sample(key), meta, sample.layer_type)]


def nuclei_2d() -> list[tuple]:
    """DSB2018 fluorescence nuclei with their ground-truth masks."""
    return _layer("nuclei_2d") + _layer("nuclei_2d_masks")


def hela_timelapse() -> list[tuple]:
    """A 20-frame HeLa nuclei time-lapse crop."""
    return _layer("hela_timelapse")


def w2s_noisy() -> list[tuple]:
    """A noisy single-shot widefield image (W2S)."""
    return _layer("w2s_noisy")
