"""Blockwise execution: grid, engine (retries, stop, LocalCluster), seam-free stitching."""

import numpy as np
import pytest

from cellsight.config.instances import InstancePostConfig
from cellsight.core.blocks.arrays import ArrayRef
from cellsight.core.blocks.engine import Engine, run_blocks
from cellsight.core.blocks.grid import block_grid
from cellsight.core.blocks.instances import label_maps_blockwise
from cellsight.core.evaluation.metrics import match_instances
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_targets import boundary_map
from cellsight.core.segmentation.watershed import watershed_instances


def test_grid_covers_every_pixel_once():
    shape = (37, 50)
    seen = np.zeros(shape, int)
    for b in block_grid(shape, (16, 16), (5, 5)):
        seen[b.core] += 1
        outer = np.zeros(shape, bool)
        outer[b.outer] = True
        assert outer[b.core].all()
        # the core sits at `inner` inside the outer region
        region = np.arange(np.prod(shape)).reshape(shape)
        assert (region[b.outer][b.inner] == region[b.core]).all()
    assert (seen == 1).all()


def test_grid_rejects_bad_sizes():
    with pytest.raises(ValueError, match="block sizes"):
        block_grid((10, 10), (0, 4), (1, 1))


_CALLS = {}


def _flaky(i):
    """Fails the first time it sees block 2 (a worker that died), then works."""
    _CALLS[i] = _CALLS.get(i, 0) + 1
    if i == 2 and _CALLS[i] == 1:
        raise RuntimeError("block 2 failed once")
    return i * 10


def test_failing_block_is_retried():
    _CALLS.clear()
    with Engine(retries=1) as engine:
        done = run_blocks(engine, _flaky, [0, 1, 2, 3])
    assert done == {0: 0, 1: 10, 2: 20, 3: 30}
    assert _CALLS[2] == 2


def test_block_failing_every_time_raises():
    def always(i):
        raise ValueError(f"bad block {i}")

    with Engine(retries=1) as engine, pytest.raises(ValueError, match="bad block"):
        run_blocks(engine, always, [0])


@pytest.mark.slow
def test_stop_cancels_remaining_blocks_and_keeps_finished():
    import time

    events = []

    def slow(i):
        time.sleep(0.3)
        return i

    with Engine() as engine, pytest.raises(Cancelled) as info:
        run_blocks(engine, slow, list(range(20)), progress=events.append,
                   should_stop=lambda: len(events) >= 2)
    assert 2 <= len(info.value.partial) < 20
    assert events[-1].total == 20


def _disks_across_corners(shape, centres, radius):
    grids = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    lab = np.zeros(shape, np.int32)
    for i, c in enumerate(centres, 1):
        d2 = sum((g - x) ** 2 for g, x in zip(grids, c, strict=True))
        lab[(d2 < radius**2) & (lab == 0)] = i
    return lab


def _maps(lab):
    bd = boundary_map(lab, 2).astype(np.float32)
    fg = (lab > 0).astype(np.float32)
    return fg, bd


@pytest.mark.parametrize("ndim", [2, 3])
def test_stitching_objects_across_block_corners_is_seam_free(ndim):
    if ndim == 2:
        shape, block = (96, 96), (32, 32)
        # touching pairs and objects centred on block corners and faces
        centres = [(32, 32), (32, 45), (64, 64), (20, 64), (75, 30), (64, 90), (5, 5)]
    else:
        shape, block = (40, 64, 64), (16, 32, 32)
        centres = [(16, 32, 32), (16, 32, 44), (30, 10, 50), (5, 50, 12)]
    lab = _disks_across_corners(shape, centres, 7)
    fg, bd = _maps(lab)
    post = InstancePostConfig(min_size=5)
    whole = watershed_instances(fg, bd, post)
    maps = ArrayRef(array=np.stack([fg, bd]))
    ids = ArrayRef(array=np.zeros(shape, np.int64))
    out = np.zeros(shape, np.uint32)
    with Engine() as engine:
        n = label_maps_blockwise(engine, maps, ids, ArrayRef(array=out), post, block,
                                 (16,) * ndim)
    assert n == whole.max() == len(centres)
    assert sorted(np.unique(out)) == list(range(n + 1))  # ids consecutive
    m = match_instances(whole, out.astype(np.int32))
    # the same objects, none split or merged; on these flat synthetic maps the watershed
    # breaks ties on a shared face by its queue order, which cropping can change: a few
    # face pixels may go to the other neighbour
    assert m.tp == n and min(m.matched_ious) > 0.99
    if ndim == 2:
        assert min(m.matched_ious) == 1.0


def _square(i):
    return i * i


@pytest.mark.slow
def test_local_cluster_of_processes_runs_blocks():
    with Engine(workers=2) as engine:
        assert not engine.in_process
        done = run_blocks(engine, _square, list(range(6)))
    assert done == {i: i * i for i in range(6)}
