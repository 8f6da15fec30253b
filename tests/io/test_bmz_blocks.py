"""Packages from other tools over big images, block by block (issue 16).

The package's per-sample preprocessing (``scale_range`` percentiles of the built-in model's
package) is measured once over the whole image, so blocks agree with the one-image run.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from cellsight.config.blocks import BlockConfig
from cellsight.config.instances import InstancePostConfig
from cellsight.core.blocks.arrays import ArrayRef
from cellsight.core.evaluation.metrics import match_instances
from cellsight.plugin.samples import load_sample

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_bmz import foreign_copy  # noqa: E402

CAREAMICS = Path(__file__).resolve().parents[1] / "data" / "bmz" / "careamics_n2v_w2s_ts.zip"

pytestmark = pytest.mark.slow  # exports and runs the built-in model: seconds


@pytest.fixture(scope="module")
def nuclei_pkg(tmp_path_factory):
    from cellsight.core.bmz.export import export_package
    from cellsight.core.bmz.run import load_package

    folder = tmp_path_factory.mktemp("blocks")
    own = export_package("nuclei", folder / "nuclei.zip",
                         test_image=np.random.default_rng(0).random((1, 96, 96)))
    path = foreign_copy(own, folder / "other.zip")
    return path, load_package(path, prefer_cellsight=False)


def test_image_statistics_are_those_of_the_whole_image(nuclei_pkg):
    from cellsight.core.bmz.blocks import image_statistics

    _, model = nuclei_pkg
    image = np.random.default_rng(1).gamma(2.0, 50.0, (200, 300)).astype(np.float32)
    stat = image_statistics(model, ArrayRef(array=image))
    values = sorted(float(np.asarray(getattr(v, "data", v)).ravel()[0]) for v in stat.values())
    expected = sorted(float(np.percentile(image, q)) for q in (1, 99.8))
    np.testing.assert_allclose(values, expected, rtol=1e-3)


def test_instances_blockwise_equal_the_one_image_run(nuclei_pkg):
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import predict_package

    _, model = nuclei_pkg
    image = load_sample("nuclei_2d")[:256, :256].astype(np.float32)
    # darker to the left: a block's own percentiles would differ from the image's
    image *= np.linspace(0.3, 1.0, image.shape[1], dtype=np.float32)[None, :]
    post = InstancePostConfig(min_size=0)
    whole = predict_package(model, image, device="cpu", post=post).labels
    blocks = predict_package_blockwise(model, image, blocks=BlockConfig(block_size=128),
                                       post=post, device="cpu")
    assert blocks.blocks == 4 and blocks.labels.shape == image.shape
    assert blocks.n_objects == int(blocks.labels.max()) == len(np.unique(blocks.labels)) - 1
    match = match_instances(whole, blocks.labels, 0.5)
    n = max(int(whole.max()), blocks.n_objects)
    assert n > 10 and match.tp >= 0.95 * n, (match.tp, int(whole.max()), blocks.n_objects)
    assert np.mean(match.matched_ious) > 0.97


def test_an_image_package_blockwise_and_refusals(nuclei_pkg, tmp_path):
    from cellsight.core.bmz.blocks import predict_package_blockwise
    from cellsight.core.bmz.run import load_package, predict_package

    model = load_package(CAREAMICS)
    noisy = load_sample("w2s_noisy")[:192, :256].astype(np.float32)
    whole = predict_package(model, noisy, device="cpu").image
    out = tmp_path / "den.ome.zarr"
    result = predict_package_blockwise(model, noisy, blocks=BlockConfig(block_size=128),
                                       out=out, device="cpu")
    from cellsight.io.omezarr import read_ome_zarr

    written = np.asarray(read_ome_zarr(result.path).data)
    assert written.shape == noisy.shape and written.dtype == np.float32
    scale = whole.std()
    assert np.abs(written - whole).mean() < 0.02 * scale
    with pytest.raises(ValueError, match="2D images"):
        predict_package_blockwise(model, np.zeros((2, 2, 64, 64), np.float32))


def test_test_time_augmentation_makes_the_output_turn_with_the_image(nuclei_pkg):
    """Averaged over the 8 flips / quarter turns, the output of a turned image is the
    turned output (exactly, up to rounding); the network alone is not that symmetric."""
    from cellsight.core.bmz.run import predict_package

    _, model = nuclei_pkg
    image = load_sample("nuclei_2d")[:96, :128].astype(np.float32)  # one tile, no padding

    def output(img, tta):
        return predict_package(model, img, device="cpu", tta=tta).output

    plain = np.abs(np.rot90(output(np.rot90(image), False), -1, axes=(-2, -1))
                   - output(image, False)).max()
    turned = np.rot90(output(np.rot90(image), True), -1, axes=(-2, -1))
    flipped = np.flip(output(np.flip(image, 0).copy(), True), -2)
    tta = output(image, True)
    assert np.abs(turned - tta).max() < 1e-4 and np.abs(flipped - tta).max() < 1e-4
    assert plain > 10 * np.abs(turned - tta).max(), plain
