import imageio.v3 as iio
import numpy as np
import pytest

from cellsight.core.progress import Cancelled
from cellsight.io.ctc import read_ctc
from cellsight.io.tiff import read_image
from cellsight.pipeline import run_pipeline


@pytest.mark.slow
def test_pipeline_results_are_real(tmp_path):
    events = []
    summary = run_pipeline(tmp_path, progress=events.append)
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["denoise"]["psnr_denoised_db"] > steps["denoise"]["psnr_noisy_db"]
    assert steps["segment"]["ap50_vs_ground_truth"] > 0.3
    assert events and events[-1].step == events[-1].total
    overview = iio.imread(tmp_path / "overview.png")
    assert overview.ndim == 3 and overview.shape[2] in (3, 4) and overview.std() > 10
    # tracking of the HeLa time-lapse: CTC folder, GEFF store, tracked labels, lineage
    track = steps["track"]
    assert track["frames"] == 20 and 20 <= track["n_tracks"] <= 80
    assert track["n_divisions"] >= 1 and track["mean_track_length_frames"] > 5
    ctc = read_ctc(tmp_path / track["ctc"], with_image=False)
    # CTC starts a new segment (with the track as parent) after a gap: never fewer rows
    assert ctc.labels.shape == (20, 256, 256) and len(ctc.table) >= track["n_tracks"]
    assert (ctc.table[:, 3] > 0).sum() >= 2 * track["n_divisions"]  # two daughters each
    assert (tmp_path / track["geff"]).is_dir()
    tracked = read_image(tmp_path / track["file"]).data  # labelled by track id
    assert len(np.unique(tracked)) - 1 == track["n_tracks"]
    lineage = iio.imread(tmp_path / track["lineage"])
    assert lineage.ndim == 3 and lineage.std() > 10
    # the summary for people: one line per step with its key figures
    text = (tmp_path / "summary.txt").read_text()
    assert text.splitlines() == summary["summary"] and len(summary["summary"]) == 6
    for figure in ("PSNR", "objects", "tracks", "divisions", "AP@0.5"):
        assert figure in text


def test_pipeline_can_be_stopped(tmp_path):
    with pytest.raises(Cancelled):
        run_pipeline(tmp_path, should_stop=lambda: True)
    assert not (tmp_path / "summary.json").exists()
