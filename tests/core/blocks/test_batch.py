"""Batches of files: parallel, resumable, a bad file reported, summary.csv."""

import csv

import numpy as np
import pytest

from cellsight.config.instances import InstancePredictConfig
from cellsight.core.blocks.batch import expand_inputs, plan_outputs, run_batch
from cellsight.core.blocks.engine import Engine
from cellsight.core.blocks.files import segment_file
from cellsight.core.progress import Cancelled
from cellsight.core.segmentation.instance_model import load_builtin
from cellsight.io.tiff import read_image, write_image


def _nuclei_image(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    img = rng.normal(10, 2, (96, 96))
    for cy, cx in rng.integers(15, 80, (4, 2)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] += 80
    return img.astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    for i in range(6):
        write_image(src / f"field{i:02d}.tif", _nuclei_image(i))
    (src / "broken.tif").write_bytes(b"not a tiff at all")
    return src


def _summary(out):
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_batch_resumes_and_reports_a_bad_file(folder, tmp_path):
    out = tmp_path / "out"
    items = plan_outputs(expand_inputs([folder]), out, "_labels.tif")
    assert len(items) == 7
    model = load_builtin("nuclei")
    config = InstancePredictConfig(diameter=20)
    seen = []
    with Engine() as engine:
        with pytest.raises(Cancelled) as info:
            run_batch(engine, segment_file, items, model, config, None, out_dir=out,
                      progress=seen.append, should_stop=lambda: len(seen) >= 3)
        first = {r.output: r.status for r in info.value.partial}
        assert "stopped" in first.values() and "done" in first.values()
        assert {r["status"] for r in _summary(out)} >= {"done", "stopped"}
        written = {p: p.stat().st_mtime_ns for p in out.glob("*_labels.tif")}
        assert written and not list(out.glob(".*.part"))
        rows = run_batch(engine, segment_file, items, model, config, None, out_dir=out)
    status = {r.file.split("/")[-1]: r.status for r in rows}
    assert status["broken.tif"] == "error"
    for path, mtime in written.items():  # done before: skipped, not written twice
        assert path.stat().st_mtime_ns == mtime
        assert status[path.name.replace("_labels.tif", ".tif")] == "skipped"
    assert sum(s == "done" for s in status.values()) == 6 - len(written)
    for i in range(6):
        labels = read_image(out / f"field{i:02d}_labels.tif").data
        assert labels.shape == (96, 96) and labels.max() >= 1
    table = _summary(out)
    assert [r["status"] for r in table] == [r.status for r in rows]
    assert "not a tiff" in table[0]["error"].lower() or table[0]["error"]


def test_expand_inputs_glob_and_duplicates(folder, tmp_path):
    files = expand_inputs([str(folder / "field0*.tif"), folder / "field01.tif"])
    assert len(files) == 6  # the glob and the repeated file: each once
    with pytest.raises(ValueError, match="No image files"):
        expand_inputs([tmp_path / "nothing-*.tif"])
    with pytest.raises(ValueError, match="share a file name"):
        plan_outputs([folder / "a.tif", tmp_path / "a.tif"], tmp_path, ".tif")
